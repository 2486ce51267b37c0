"""Analytics settings, read at call time with defaults (override any of them in Django settings)."""

from datetime import timedelta

from django.conf import settings


def snapshot_max_age():
    return getattr(settings, "ANALYTICS_SNAPSHOT_MAX_AGE", timedelta(minutes=60))


def active_days():
    """A user or project is active when one of its tasks was created or changed this recently."""
    return getattr(settings, "ANALYTICS_ACTIVE_DAYS", 30)


def throughput_days():
    return getattr(settings, "ANALYTICS_THROUGHPUT_DAYS", 30)


def precompute_batch():
    return getattr(settings, "ANALYTICS_PRECOMPUTE_BATCH", 500)


def export_chunk_size():
    return getattr(settings, "ANALYTICS_EXPORT_CHUNK_SIZE", 5000)


def export_progress_every():
    """Rows between two progress writes."""
    return getattr(settings, "ANALYTICS_EXPORT_PROGRESS_EVERY", 500)


def export_ttl():
    return getattr(settings, "ANALYTICS_EXPORT_TTL", timedelta(days=7))


def export_tmp_dir():
    """Where a file is written before it is saved to storage (None: the system temp dir)."""
    return getattr(settings, "ANALYTICS_EXPORT_TMP_DIR", None)


# Task time limits are read once at import (Celery decorators); both stay below the 1 h visibility timeout.
EXPORT_SOFT_TIME_LIMIT = getattr(settings, "ANALYTICS_EXPORT_SOFT_TIME_LIMIT", 1800)
EXPORT_TIME_LIMIT = getattr(settings, "ANALYTICS_EXPORT_TIME_LIMIT", 1900)
