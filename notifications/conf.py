"""notifications settings and their defaults (core.appsettings): read as `conf.NAME`; a Django setting of the
same name overrides the default."""

from core.appsettings import Derived, reader

DEFAULTS = {
    # Read notifications are deleted after this many days, all of them after the hard limit.
    "NOTIFICATIONS_READ_RETENTION_DAYS": 30,
    "NOTIFICATIONS_HARD_RETENTION_DAYS": 180,
    "NOTIFICATIONS_CLEANUP_BATCH": 1000,
    "NOTIFICATIONS_EMAIL_MAX_ATTEMPTS": 5,
    # First retry waits about this long; each further one doubles, capped at MAX_COUNTDOWN_SECONDS.
    "NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS": 2.0,
    # A row claimed ("sending") longer than this is presumed lost with its worker and may be re-claimed.
    "NOTIFICATIONS_EMAIL_STALE_SENDING_SECONDS": Derived(lambda s: s.CELERY_TASK_TIME_LIMIT + 240),
    # Absolute links in emails (also a project setting in taskmgmt/settings/base.py).
    "SITE_URL": "http://127.0.0.1:8000",
    # Links in emails, URL templates for the deployer's front end ({site_url}, {task_id}, {project_id} filled
    # in). Defaults: the app's own small HTML pages (session login first).
    "NOTIFICATIONS_TASK_URL": "{site_url}/tasks/{task_id}/",
    "NOTIFICATIONS_PREFERENCES_URL": "{site_url}/notifications/preferences/",
    # Domain of the emails' Message-ID; empty: the host of SITE_URL.
    "NOTIFICATIONS_MESSAGE_ID_DOMAIN": None,
    # Notifications sent per batch (one message, one claim, one SMTP connection).
    "NOTIFICATIONS_EMAIL_BATCH_SIZE": 50,
    # Coalesced wake-ups (core.enqueue.enqueue_on_commit_coalesced): a notification written alone publishes its
    # message only when no earlier one is still waiting for a worker; the worker takes every waiting row, a batch
    # at a time, and each full batch publishes the next. This long at most a waiting message holds the others
    # back (a lost one is covered after it, and by the sweep). 0: one message per notification.
    "NOTIFICATIONS_EMAIL_COALESCE_SECONDS": 30,
    # The message that rang runs this long after the commit (a countdown), so the writes of the next moments join
    # its batch instead of ringing again as soon as the worker answers (as a producer's linger time does). Email is
    # not that urgent. Redis only: on RabbitMQ a countdown needs the delayed-delivery exchanges that workers declare
    # (a web process may publish before any worker has), so there the message goes at once. 0: at once.
    "NOTIFICATIONS_EMAIL_LINGER_SECONDS": 0.2,
}
__getattr__ = reader(DEFAULTS)
