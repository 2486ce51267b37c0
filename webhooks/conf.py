"""webhooks settings and their defaults (core.appsettings): read as `conf.NAME`; a Django setting of the same
name overrides the default."""

from core.appsettings import Derived, reader

DEFAULTS = {
    # Networks the SSRF guard admits although special-purpose, e.g. ["127.0.0.1/32"] (a list, or a comma-
    # separated string); link-local only through a network listed inside it. Empty: public addresses only.
    "WEBHOOK_ALLOWED_NETWORKS": (),
    # Seconds to wait after failed attempt 1, 2, ...; a delivery gets len(schedule) + 1 attempts.
    "WEBHOOK_RETRY_SCHEDULE": (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600),
    "WEBHOOK_RETRY_JITTER": 0.1,  # +/- fraction of each delay
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    # A subscription is disabled after this many deliveries in a row exhausted their attempts.
    "WEBHOOK_DISABLE_AFTER_EXHAUSTED": 5,
    "WEBHOOK_DELIVERY_RETENTION_DAYS": 30,
    "WEBHOOK_SECRET_ROTATION_GRACE_HOURS": 24.0,
    # Deliveries per deliver_webhook message, and requests in flight at once inside one task.
    "WEBHOOK_BATCH_SIZE": 100,
    "WEBHOOK_CONCURRENCY": 25,
    # How long a claimed batch is ours: longer than the hard task time limit, so a lease never lapses while
    # its task can still be running.
    "WEBHOOK_LEASE_SECONDS": Derived(lambda s: s.CELERY_TASK_TIME_LIMIT + 60),
    "WEBHOOK_RESPONSE_BODY_LIMIT": 1024,
    # Retries due within this many seconds are countdowns (never above MAX_COUNTDOWN_SECONDS); later ones
    # wait for retry_failed_webhooks.
    "WEBHOOK_MAX_COUNTDOWN_SECONDS": 60,
    "WEBHOOK_REQUEUE_GRACE_SECONDS": Derived(lambda s: s.OUTBOX_SWEEP_AFTER_SECONDS),
    # Extra CA file to trust for receivers' certificates (e.g. a private CA); None: the system default.
    "WEBHOOK_CA_BUNDLE": None,
}
__getattr__ = reader(DEFAULTS)
