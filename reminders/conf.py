"""reminders settings and their defaults (core.appsettings): read as `conf.NAME`; a Django setting of the same
name overrides the default."""

from core.appsettings import reader

DEFAULTS = {
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
__getattr__ = reader(DEFAULTS)
