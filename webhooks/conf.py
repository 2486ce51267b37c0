"""Webhook settings, read at call time so tests can override them with the `settings` fixture."""

from django.conf import settings

DEFAULT_RETRY_SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)


def get(name, default):
    return getattr(settings, name, default)


def allow_private_targets():
    return bool(get("WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def retry_schedule():
    """Seconds to wait after failed attempt 1, 2, ...; a delivery gets len(schedule) + 1 attempts."""
    return tuple(get("WEBHOOK_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE))


def retry_jitter():
    return float(get("WEBHOOK_RETRY_JITTER", 0.1))  # +/- fraction of each delay


def timeout_seconds():
    return float(get("WEBHOOK_TIMEOUT_SECONDS", 10.0))


def disable_after():
    return int(get("WEBHOOK_DISABLE_AFTER_EXHAUSTED", 5))


def retention_days():
    return int(get("WEBHOOK_DELIVERY_RETENTION_DAYS", 30))


def rotation_grace_hours():
    return float(get("WEBHOOK_SECRET_ROTATION_GRACE_HOURS", 24))


def batch_size():
    """Deliveries per deliver_webhook message."""
    return int(get("WEBHOOK_BATCH_SIZE", 100))


def concurrency():
    """Requests in flight at once inside one deliver_webhook task."""
    return int(get("WEBHOOK_CONCURRENCY", 25))


def lease_seconds():
    """How long a claimed batch is ours: longer than the hard task time limit, so a lease never lapses
    while its task can still be running."""
    return int(get("WEBHOOK_LEASE_SECONDS", settings.CELERY_TASK_TIME_LIMIT + 60))


def response_body_limit():
    return int(get("WEBHOOK_RESPONSE_BODY_LIMIT", 1024))


def max_countdown():
    return min(int(get("WEBHOOK_MAX_COUNTDOWN_SECONDS", 60)), settings.MAX_COUNTDOWN_SECONDS)


def requeue_grace_seconds():
    return int(get("WEBHOOK_REQUEUE_GRACE_SECONDS", settings.OUTBOX_SWEEP_AFTER_SECONDS))


def ca_bundle():
    """Extra CA file to trust for receivers' certificates (e.g. a private CA); None: the system default."""
    return get("WEBHOOK_CA_BUNDLE", None)
