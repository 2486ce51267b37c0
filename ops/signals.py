"""Task, webhook, email and export metrics from Celery's signals: one place, no edits in the apps.

Each task run is observed in the process that runs it (task_prerun / task_postrun). For a few task
names the return value (a small dict of counts, part of each task's contract) is read as well.
ops.metrics is imported on the first signal, after `manage.py celery_worker` chose the metrics directory.
"""

import logging
import time

from celery import signals

logger = logging.getLogger(__name__)
_started = {}
EMAIL_TASKS = {
    "notifications.send_email_notification",
    "notifications.send_task_assignment_notification",
    "notifications.send_comment_mention_notification",
}
WEBHOOK_TASK = "webhooks.deliver_webhook"
EXPORT_TASK = "analytics.export_tasks_async"


def _on_prerun(task_id=None, **kwargs):
    _started[task_id] = (time.time(), time.perf_counter())


def _on_postrun(task_id=None, task=None, args=None, retval=None, state=None, **kwargs):
    from ops import metrics

    started = _started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    state = (state or "UNKNOWN").lower()
    metrics.tasks.labels(name, state).inc()
    if started is None:
        return
    duration = time.perf_counter() - started[1]
    metrics.task_runtime.labels(name).observe(duration)
    try:
        if name in EMAIL_TASKS:
            outcome = retval.get("outcome") if isinstance(retval, dict) else None
            metrics.email_sends.labels(str(outcome) if outcome else ("retry" if state == "retry" else "error")).inc()
        elif name == WEBHOOK_TASK and isinstance(retval, dict):
            for outcome in ("delivered", "retrying", "failed", "cancelled"):
                if retval.get(outcome):
                    metrics.webhook_deliveries.labels(outcome).inc(retval[outcome])
            if retval.get("delivered"):
                _observe_webhook_lag(args, since=started[0])
        elif name == EXPORT_TASK and isinstance(retval, dict) and retval.get("ran"):
            metrics.export_duration.labels(str(retval.get("status", "unknown"))).observe(duration)
    except Exception as exc:  # metrics never break a task
        logger.warning("metrics for %s: %s", name, type(exc).__name__)


def _observe_webhook_lag(args, *, since):
    from datetime import UTC, datetime

    from ops import metrics
    from webhooks.models import DeliveryState, WebhookDelivery

    ids = args[0] if args else []
    ids = [ids] if isinstance(ids, int) else list(ids)
    rows = WebhookDelivery.objects.filter(
        pk__in=ids, state=DeliveryState.DELIVERED, delivered_at__gte=datetime.fromtimestamp(since, UTC)
    ).values_list("created_at", "delivered_at")
    for created_at, delivered_at in rows:
        metrics.webhook_lag.observe(max(0.0, (delivered_at - created_at).total_seconds()))


def connect():
    signals.task_prerun.connect(_on_prerun, dispatch_uid="ops.metrics.prerun", weak=False)
    signals.task_postrun.connect(_on_postrun, dispatch_uid="ops.metrics.postrun", weak=False)
