"""All Celery configuration, declared once. Imported into Django settings (CELERY_ namespace).

Numbers that must agree with each other:
- BROKER_VISIBILITY_TIMEOUT (1 h): an unacked message is redelivered after this long. Every hard time
  limit and every countdown/ETA is far below it, so a running task is never redelivered mid-run and a
  delayed message is never duplicated. Long waits (webhook retries of minutes to hours) are rows with
  a `next_attempt_at` that a periodic sweep picks up, never Celery countdowns.
- Publish retries are bounded (about 1.5 s in total), so a request whose broker is down falls back
  to the durable row + sweep path instead of hanging.
"""

import os

from kombu import Exchange, Queue

_redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

BROKER_VISIBILITY_TIMEOUT = int(os.environ.get("BROKER_VISIBILITY_TIMEOUT", "3600"))
# Longest countdown a task may use; anything longer must be a row plus a sweep.
MAX_COUNTDOWN_SECONDS = int(os.environ.get("MAX_COUNTDOWN_SECONDS", "60"))

# Redis Sentinel: REDIS_SENTINELS="host1:26379,host2:26379,host3:26379" (and REDIS_SENTINEL_MASTER, the
# monitored group, default "mymaster"; REDIS_SENTINEL_DB, default 0). The broker then goes through
# kombu's sentinel:// transport and every other Redis client through redis-py's Sentinel (core/redis.py),
# so all of them follow a failover.
REDIS_SENTINELS = [
    (host, int(port))
    for host, _, port in (item.strip().rpartition(":") for item in os.environ.get("REDIS_SENTINELS", "").split(","))
    if host
]
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_DB = int(os.environ.get("REDIS_SENTINEL_DB", "0"))
if REDIS_SENTINELS:
    _redis_url = ";".join(f"sentinel://{host}:{port}/{REDIS_SENTINEL_DB}" for host, port in REDIS_SENTINELS)
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", _redis_url)
# RabbitMQ (amqp://user:password@host:5672/vhost): quorum queues, publisher confirms, native delayed
# delivery for countdowns (docs/deployment.md). Anything else is Redis.
BROKER_IS_AMQP = CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a worker never gives up on its broker
# A worker that lost its broker retries at least this often (core/worker.py: Consumer).
BROKER_RECONNECT_MAX_SECONDS = float(os.environ.get("BROKER_RECONNECT_MAX_SECONDS", "2"))
CELERY_WORKER_CONSUMER = "core.worker:Consumer"
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    "socket_connect_timeout": 1.0,
    "socket_timeout": 5.0,
    "retry_on_timeout": False,
    "max_connections": 20,
}
if CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
if BROKER_IS_AMQP:
    # No visibility timeout on RabbitMQ: an unacked message returns to its queue the moment its
    # consumer's connection drops. confirm_publish: a publish returns once the broker has the message.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "connect_timeout": 1.0}
    CELERY_BROKER_HEARTBEAT = 10
CELERY_BROKER_POOL_LIMIT = 10
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0.2,
    "interval_step": 0.3,
    "interval_max": 0.5,
}

# django-celery-results' "django-db" backend, which drops (and logs) a state it cannot store while
# the database is down instead of upsetting the worker (core/results.py).
CELERY_RESULT_BACKEND = "core.results:DatabaseBackend"
CELERY_CACHE_BACKEND = "django-cache"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True

# Every task of ours is idempotent: ack after running, and requeue if the worker dies mid-task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "300"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "360"))
# No STARTED state: it is a database write before every task body, and with the database down it
# fails outside the body, where the task cannot retry.
CELERY_TASK_TRACK_STARTED = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # the per-queue choice is made by `manage.py celery_worker`
CELERY_WORKER_MAX_TASKS_PER_CHILD = 1000
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = False

QUEUE_NAMES = ("default", "notifications", "recurring", "webhooks", "analytics", "reminders")
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_DEFAULT_EXCHANGE = "default"
CELERY_TASK_DEFAULT_ROUTING_KEY = "default"
CELERY_TASK_CREATE_MISSING_QUEUES = False
if BROKER_IS_AMQP:
    # Quorum queues (replicated, durable). Topic exchanges (used like direct ones: the routing key is the
    # queue name) because Celery's native delayed delivery, which carries countdowns on quorum queues,
    # needs them.
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    CELERY_TASK_QUEUES = tuple(
        Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
        for name in QUEUE_NAMES
    )
else:
    CELERY_TASK_QUEUES = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES)
# Routing by task-name prefix: the part before the first dot names the queue.
CELERY_TASK_ROUTES = {
    "notifications.*": {"queue": "notifications", "routing_key": "notifications"},
    "recurring.*": {"queue": "recurring", "routing_key": "recurring"},
    "webhooks.*": {"queue": "webhooks", "routing_key": "webhooks"},
    "analytics.*": {"queue": "analytics", "routing_key": "analytics"},
    "reminders.*": {"queue": "reminders", "routing_key": "reminders"},
    "core.*": {"queue": "default", "routing_key": "default"},
    "tasks.*": {"queue": "default", "routing_key": "default"},
    "celery.*": {"queue": "default", "routing_key": "default"},
}

# How many messages a worker process reserves ahead, per queue (see docs/deployment.md):
# short, many tasks prefetch a few; long or slow-I/O tasks take one at a time so they spread over workers.
PREFETCH_BY_QUEUE = {
    "default": 4,
    "notifications": 4,
    "reminders": 4,
    "recurring": 1,
    "webhooks": 1,
    "analytics": 1,
}

CELERY_BEAT_SCHEDULER = "core.beat:DatabaseScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = int(os.environ.get("CELERY_BEAT_MAX_LOOP_INTERVAL", "10"))
# Schedules are data in django-celery-beat's tables, seeded create-only by `manage.py seed_schedules`.
CELERY_BEAT_SCHEDULE = {}

# After a failed publish, this process skips publishing for this long (rows wait for the sweep).
PUBLISH_BREAKER_SECONDS = float(os.environ.get("PUBLISH_BREAKER_SECONDS", "5"))

# Rows still pending this long after their last publish are re-published by core.sweep_pending.
OUTBOX_SWEEP_AFTER_SECONDS = int(os.environ.get("OUTBOX_SWEEP_AFTER_SECONDS", "120"))
OUTBOX_SWEEP_BATCH = int(os.environ.get("OUTBOX_SWEEP_BATCH", "500"))

# Liveness of claim holders (core/liveness.py): each worker process refreshes a key every INTERVAL
# with this TTL; a holder whose key expired is declared dead and its claims are retaken at once (a
# worker that dies is redone about TTL + INTERVAL later). Dead holders are remembered for MEMORY.
LIVENESS_INTERVAL_SECONDS = float(os.environ.get("LIVENESS_INTERVAL_SECONDS", "5"))
LIVENESS_TTL_SECONDS = float(os.environ.get("LIVENESS_TTL_SECONDS", "20"))
LIVENESS_MEMORY_SECONDS = int(os.environ.get("LIVENESS_MEMORY_SECONDS", "3600"))

# Several beats may run; one leads (core/beat.py). A standby tries the leader lock this often, which
# bounds the takeover time after the leader dies (plus the leader's next due entry).
BEAT_STANDBY_POLL_SECONDS = float(os.environ.get("BEAT_STANDBY_POLL_SECONDS", "5"))
# Off: every beat schedules (only to prove the tasks' data-level idempotency; never in production).
BEAT_LEADER_LOCK = os.environ.get("BEAT_LEADER_LOCK", "true").lower() not in ("0", "false", "no")

# Shutdown (docs/deployment.md "Stopping workers"): SIGTERM is a warm shutdown: running tasks finish,
# prefetched messages go back to the broker. A cold shutdown (SIGQUIT, or a second Ctrl-C) first gives
# running tasks this long (Celery's soft shutdown), then stops them; acks_late puts their messages back.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = float(os.environ.get("WORKER_SOFT_SHUTDOWN_TIMEOUT", "30"))
CELERY_WORKER_ENABLE_SOFT_SHUTDOWN_ON_IDLE = True
