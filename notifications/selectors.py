"""Reads: a user's notifications (only their own) and their channel preferences."""

from core.exceptions import NotFound
from notifications.models import DEFAULT_CHANNELS, Kind, Notification, NotificationPreference


def notification_list(*, user, unread=None):
    qs = Notification.objects.filter(recipient=user, show_in_app=True).select_related("actor", "task")
    if unread is True:
        qs = qs.filter(read_at__isnull=True)
    elif unread is False:
        qs = qs.filter(read_at__isnull=False)
    return qs.order_by("-created_at", "-id")


def notification_get(*, user, notification_id):
    """Someone else's notification, or an email-only record, is a 404 like a missing one."""
    notification = notification_list(user=user).filter(pk=notification_id).first()
    if notification is None:
        raise NotFound("Notification not found.", code="not_found")
    return notification


def notification_unread_count(*, user):
    return Notification.objects.filter(recipient=user, show_in_app=True, read_at__isnull=True).count()


def preferences_get(*, user):
    """{kind: {"in_app": bool, "email": bool}} for every kind, stored choices over defaults."""
    prefs = {kind.value: dict(DEFAULT_CHANNELS[kind]) for kind in Kind}
    for row in NotificationPreference.objects.filter(user=user):
        if row.kind in prefs:
            prefs[row.kind] = {"in_app": row.in_app, "email": row.email}
    return prefs


def preference_for(*, user, kind):
    row = NotificationPreference.objects.filter(user=user, kind=kind).values("in_app", "email").first()
    return row or dict(DEFAULT_CHANNELS[Kind(kind)])


def notification_email_state(*, notification_id):
    """The email state of one notification (None when it no longer exists)."""
    return Notification.objects.filter(pk=notification_id).values_list("email_state", flat=True).first()
