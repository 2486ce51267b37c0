"""Reads for the operations page (and the metrics collector): queues, failures, webhooks, outboxes,
schedules, beat. Bounded queries: the last 24 hours, at most a few thousand rows."""

import json
import statistics
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

HOURS = 24


def queue_of(task_name):
    """The queue a task name routes to (taskmgmt/celery_settings.py routes by the prefix)."""
    prefix = task_name.split(".", 1)[0]
    return prefix if prefix in settings.QUEUE_NAMES else "default"


def _hour_slots(now):
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    return [start + timedelta(hours=i) for i in range(HOURS)]


def queues(*, now):
    from django_celery_results.models import TaskResult

    from core import redis as core_redis

    try:
        r = core_redis.client()
        depth = {name: r.llen(name) for name in settings.QUEUE_NAMES}
    except Exception:
        depth = dict.fromkeys(settings.QUEUE_NAMES)
    slots = _hour_slots(now)
    hourly = {name: dict.fromkeys(slots, 0) for name in settings.QUEUE_NAMES}
    rows = (
        TaskResult.objects.filter(date_done__gte=slots[0])
        .annotate(hour=TruncHour("date_done"))
        .values("task_name", "hour")
        .annotate(n=Count("id"))
    )
    for row in rows:
        hour = row["hour"]
        queue = queue_of(row["task_name"] or "")
        if hour in hourly[queue]:
            hourly[queue][hour] += row["n"]
    return [
        {
            "name": name,
            "depth": depth[name],
            "last_hour": hourly[name][slots[-1]],
            "day": sum(hourly[name].values()),
            "hourly": list(hourly[name].values()),
        }
        for name in settings.QUEUE_NAMES
    ]


def _error(result):
    try:
        data = json.loads(result or "{}")
    except ValueError:
        return ""
    if isinstance(data, dict) and "exc_type" in data:
        message = data.get("exc_message")
        message = " ".join(map(str, message)) if isinstance(message, list | tuple) else str(message or "")
        return f"{data['exc_type']}: {message}"[:300]
    return ""


def recent_failures(*, limit=20):
    from django_celery_results.models import TaskResult

    return [
        {"task": r.task_name, "at": r.date_done, "task_id": r.task_id, "error": _error(r.result), "worker": r.worker}
        for r in TaskResult.objects.filter(status="FAILURE").order_by("-date_done")[:limit]
    ]


def failures_by_task(*, now):
    from django_celery_results.models import TaskResult

    return list(
        TaskResult.objects.filter(status="FAILURE", date_done__gte=now - timedelta(hours=HOURS))
        .values("task_name")
        .annotate(n=Count("id"))
        .order_by("-n")[:10]
    )


def webhooks(*, now, limit=5000):
    from webhooks.models import WebhookAttempt, WebhookDelivery

    since = now - timedelta(hours=HOURS)
    slots = _hour_slots(now)
    ok, failed = dict.fromkeys(slots, 0), dict.fromkeys(slots, 0)
    rows = (
        WebhookAttempt.objects.filter(started_at__gte=slots[0])
        .annotate(hour=TruncHour("started_at"))
        .values("hour", "success")
        .annotate(n=Count("id"))
    )
    for row in rows:
        if row["hour"] in ok:
            (ok if row["success"] else failed)[row["hour"]] += row["n"]
    total_ok, total_failed = sum(ok.values()), sum(failed.values())
    lags = sorted(
        (d - c).total_seconds()
        for c, d in WebhookDelivery.objects.filter(delivered_at__gte=since)
        .values_list("created_at", "delivered_at")
        .order_by("-delivered_at")[:limit]
    )

    def pct(q):
        if not lags:
            return None
        return lags[min(len(lags) - 1, int(q * len(lags)))]

    return {
        "attempts": total_ok + total_failed,
        "success_rate": (100.0 * total_ok / (total_ok + total_failed)) if total_ok + total_failed else None,
        "lag_p50": statistics.median(lags) if lags else None,
        "lag_p95": pct(0.95),
        "delivered": len(lags),
        "pending": WebhookDelivery.objects.filter(state="pending").count(),
        "hourly_ok": list(ok.values()),
        "hourly_failed": list(failed.values()),
    }


def outboxes(*, now):
    from core import outbox

    out = []
    for name, box in sorted(outbox.registered().items()):
        qs = box.queryset()
        oldest = qs.order_by(box.published).values_list(box.published, flat=True).first()
        out.append({"name": name, "pending": qs.count(), "oldest_age": (now - oldest).total_seconds() if oldest else 0})
    return out


def schedules():
    from django_celery_beat.models import PeriodicTask

    return list(
        PeriodicTask.objects.select_related("interval", "crontab")
        .order_by("name")
        .values("name", "task", "enabled", "last_run_at", "total_run_count")
    )


def beat():
    from core.beat import beat_instances, last_beat_tick

    try:
        tick = last_beat_tick()
        instances, leader = beat_instances()
    except Exception:
        return {"error": "broker unreachable"}
    return {
        "leader": leader,
        "tick_age": time.time() - tick if tick else None,
        "instances": [
            {"id": k, "role": v["role"], "seen_age": time.time() - v["seen"]} for k, v in sorted(instances.items())
        ],
    }


def operations(*, now=None):
    now = now or timezone.now()
    return {
        "now": now,
        "queues": queues(now=now),
        "failures": recent_failures(),
        "failures_by_task": failures_by_task(now=now),
        "webhooks": webhooks(now=now),
        "outboxes": outboxes(now=now),
        "schedules": schedules(),
        "beat": beat(),
    }
