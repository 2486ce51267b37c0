"""The operations page in Django admin (staff only): /admin/operations/."""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path

from ops import charts, selectors


def _duration(seconds):
    if seconds is None:
        return "–"
    if seconds == float("inf"):
        return "never"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


def operations_view(request):
    data = selectors.operations()
    for q in data["queues"]:
        q["chart"] = charts.bars(q["hourly"], title=f"{q['name']}: tasks per hour, last 24 h")
    hooks = data["webhooks"]
    hooks["chart"] = charts.bars(
        hooks["hourly_ok"], second=hooks["hourly_failed"], title="webhook attempts per hour: ok (blue), failed (red)"
    )
    hooks["gauge"] = charts.gauge(hooks["success_rate"])
    hooks["lag_p50_text"], hooks["lag_p95_text"] = _duration(hooks["lag_p50"]), _duration(hooks["lag_p95"])
    for box in data["outboxes"]:
        box["age_text"] = _duration(box["oldest_age"]) if box["pending"] else "–"
    beat = data["beat"]
    if "error" not in beat:
        beat["tick_text"] = _duration(beat["tick_age"])
        for inst in beat["instances"]:
            inst["seen_text"] = _duration(inst["seen_age"])
    context = {**admin.site.each_context(request), "title": "Operations", **data}
    return TemplateResponse(request, "admin/ops/operations.html", context)


_original_get_urls = admin.site.get_urls


def _get_urls():
    return [path("operations/", admin.site.admin_view(operations_view), name="ops-operations"), *_original_get_urls()]


admin.site.get_urls = _get_urls
