"""tasks_app settings, read with defaults (override any of them in Django settings)."""

from django.conf import settings


def get(name):
    return getattr(settings, name, DEFAULTS[name])


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
}
