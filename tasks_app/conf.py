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
    # Reminders claimed and queued per transaction by send_reminder_notifications, and per run.
    "REMINDER_SWEEP_BATCH": 500,
    "REMINDER_MAX_PER_RUN": 20000,
    # A claimed reminder still unsent after this long (lost message, dead worker) is claimed again.
    "REMINDER_CLAIM_STALE_SECONDS": 600,
    # Users handled per transaction by the daily summary and weekly report.
    "SUMMARY_USER_BATCH": 200,
    # A summary missed at the morning hour (beat down, DST gap) is still sent this many hours later.
    "SUMMARY_CATCH_UP_HOURS": 6,
    # Tasks listed per section of the daily summary (the counts are always complete).
    "SUMMARY_MAX_LISTED": 10,
}
