"""HTML pages a person opens from an email: unsubscribe (RFC 8058) and notification preferences.

Unsubscribe: GET only shows a confirmation page with a button, so mail scanners and link prefetchers
that follow links change nothing; POST (the button, or a mail client's one-click
`List-Unsubscribe=One-Click` request, RFC 8058) turns the email channel off. The signed token in the
URL is the credential (no login, no CSRF token: a one-click POST from a mail client carries none).
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.exceptions import ApplicationError, NotFound
from notifications import selectors, services
from notifications.models import Kind

KIND_LABELS = {
    Kind.ASSIGNED: "assigned to a task",
    Kind.MENTIONED: "mentioned in a comment",
    Kind.REMINDER: "task reminders",
    Kind.DAILY_SUMMARY: "daily task summary",
    Kind.WEEKLY_REPORT: "weekly productivity report",
    Kind.WEBHOOK_DISABLED: "webhook disabled",
}


def _label(kind):
    return KIND_LABELS.get(kind, kind)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    try:
        _user, kind = services.unsubscribe_token_read(token=token)
        if request.method == "POST":
            services.unsubscribe_by_token(token=token)
    except (ApplicationError, NotFound) as exc:
        response = render(request, "pages/unsubscribe_invalid.html", {"message": exc.message}, status=exc.status)
    else:
        template = "pages/unsubscribed.html" if request.method == "POST" else "pages/unsubscribe_confirm.html"
        context = {"kind": kind, "label": _label(kind), "preferences_url": services.preferences_url()}
        response = render(request, template, context)
    for name, value in headers.items():
        response[name] = value
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request):
    saved = False
    if request.method == "POST":
        changes = {
            kind: {channel: request.POST.get(f"{kind}.{channel}") == "on" for channel in ("in_app", "email")}
            for kind in Kind.values
        }
        services.preferences_update(user=request.user, changes=changes)
        saved = True
    prefs = selectors.preferences_get(user=request.user)
    rows = [{"kind": kind, "label": _label(kind), **prefs[kind]} for kind in Kind.values]
    return render(request, "pages/notification_preferences.html", {"rows": rows, "saved": saved})
