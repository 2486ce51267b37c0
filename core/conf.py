"""core settings and their defaults (core.appsettings): read as `conf.NAME`; a Django setting of the same name
(taskmgmt/settings/base.py reads them from the environment) overrides the default."""

from core.appsettings import reader

DEFAULTS = {
    # Throttle rates per scope, "N/period" (s, min, hour, day; "100/5min"); an empty value turns a scope off.
    "API_THROTTLE_RATES": {"user": "1200/min", "anon": "120/min", "auth": "10/min"},
    # The Django cache alias holding the counters (Redis).
    "API_THROTTLE_CACHE": "default",
    # PUT/PATCH/DELETE without If-Match: allowed (False) or refused with 428 (True). core/conditional.py
    "API_REQUIRE_IF_MATCH": False,
    # An Idempotency-Key's answer is replayed for this long (seconds). core/idempotency.py
    "IDEMPOTENCY_TTL_SECONDS": 24 * 3600,
    # A claim with no answer after this long (its request died, its work rolled back) is taken over.
    "IDEMPOTENCY_LOCK_SECONDS": 60,
    # A list poll answered 304 runs on a PostgreSQL connection of its own kept per thread, and PREPAREs its two
    # statements there (not behind PgBouncer's transaction pooling). core/fastpath.py
    "LIST_POLL_KEEP_CONNECTION": True,
    "LIST_POLL_PREPARE": True,
    # A worker process (`celery worker`, `manage.py celery_worker`) keeps its database connections this many seconds
    # across tasks instead of the web's CONN_MAX_AGE (None: the web's value). Checked before each reuse
    # (CONN_HEALTH_CHECKS), closed after a task that hit a database error. core/worker.py
    "WORKER_CONN_MAX_AGE": 300,
}
__getattr__ = reader(DEFAULTS)
