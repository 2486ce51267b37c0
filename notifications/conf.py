"""App settings, read at call time so tests can override them with the `settings` fixture."""

from django.conf import settings


def read_retention_days():
    return getattr(settings, "NOTIFICATIONS_READ_RETENTION_DAYS", 30)


def hard_retention_days():
    return getattr(settings, "NOTIFICATIONS_HARD_RETENTION_DAYS", 180)


def cleanup_batch_size():
    return getattr(settings, "NOTIFICATIONS_CLEANUP_BATCH", 1000)


def email_max_attempts():
    return getattr(settings, "NOTIFICATIONS_EMAIL_MAX_ATTEMPTS", 5)


def email_retry_base_seconds():
    """First retry waits about this long; each further one doubles, capped at MAX_COUNTDOWN_SECONDS."""
    return getattr(settings, "NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS", 2.0)


def email_stale_sending_seconds():
    """A row claimed ("sending") longer than this is presumed lost with its worker and may be re-claimed."""
    return getattr(settings, "NOTIFICATIONS_EMAIL_STALE_SENDING_SECONDS", settings.CELERY_TASK_TIME_LIMIT + 240)


def site_url():
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")


def message_id_domain():
    return getattr(settings, "NOTIFICATIONS_MESSAGE_ID_DOMAIN", None) or (
        site_url().split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    )
