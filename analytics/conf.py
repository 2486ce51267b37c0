"""analytics settings and their defaults (core.appsettings): read as `conf.NAME`; a Django setting of the same
name overrides the default."""

from datetime import timedelta

from core.appsettings import reader

DEFAULTS = {
    "ANALYTICS_SNAPSHOT_MAX_AGE": timedelta(minutes=60),
    # A user or project is active when one of its tasks was created or changed this recently.
    "ANALYTICS_ACTIVE_DAYS": 30,
    "ANALYTICS_THROUGHPUT_DAYS": 30,
    "ANALYTICS_PRECOMPUTE_BATCH": 500,
    # Rows per database fetch of an export.
    "ANALYTICS_EXPORT_CHUNK_SIZE": 10000,
    # On PostgreSQL, write CSV exports with COPY ... TO STDOUT: about COPY's speed, but progress only jumps
    # from 0 to 100 at the end (the connection is busy during the COPY). Off: the csv module over a
    # server-side cursor, with progress every ANALYTICS_EXPORT_PROGRESS_EVERY rows.
    "ANALYTICS_EXPORT_CSV_COPY": False,
    # Rows between two progress writes.
    "ANALYTICS_EXPORT_PROGRESS_EVERY": 500,
    "ANALYTICS_EXPORT_TTL": timedelta(days=7),
    # Where a file is written before it is saved to storage (None: the system temp dir).
    "ANALYTICS_EXPORT_TMP_DIR": None,
    # Task time limits, read once at import (Celery decorators); both stay below the 1 h visibility timeout.
    "ANALYTICS_EXPORT_SOFT_TIME_LIMIT": 1800,
    "ANALYTICS_EXPORT_TIME_LIMIT": 1900,
}
__getattr__ = reader(DEFAULTS)
