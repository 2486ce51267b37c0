"""tasks_app settings and their defaults (core.appsettings): read as `conf.NAME`; a Django setting of the same
name overrides the default."""

from core.appsettings import reader

DEFAULTS = {
    # Templates locked and generated per batch by process_recurring_tasks (O(1) queries per batch).
    "RECURRING_BATCH_SIZE": 500,
    # Upper bound of templates one process_recurring_tasks run handles; the next run continues.
    "RECURRING_MAX_TEMPLATES_PER_RUN": 20000,
    # catch_up="all": at most this many missed occurrences are created per template (the latest ones).
    "RECURRING_CATCH_UP_CAP": 50,
    # Completed (done) instances older than this are deleted by cleanup_completed_recurring_instances.
    "RECURRING_CLEANUP_AFTER_DAYS": 180,
    "RECURRING_CLEANUP_BATCH": 1000,
    # Event log (activity history) rows older than this many days are deleted daily by
    # tasks.cleanup_old_events; 0 keeps them forever.
    "EVENT_RETENTION_DAYS": 365,
    "EVENT_CLEANUP_BATCH": 5000,
    # PostgreSQL text search configuration for task search ('simple', 'english', 'german', ...).
    # Changing it needs `manage.py reindex_task_search` for existing rows.
    "TASK_SEARCH_LANGUAGE": "english",
    # GET /api/v1/changes/?wait=N waits at most this long (seconds) for the next change.
    "CHANGES_MAX_WAIT_SECONDS": 30,
}
__getattr__ = reader(DEFAULTS)
