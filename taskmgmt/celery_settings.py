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

BROKER_VISIBILITY_TIMEOUT = 3600
# Longest countdown a task may use; anything longer must be a row plus a sweep.
MAX_COUNTDOWN_SECONDS = 60

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", _redis_url)
# kombu's Redis transport with one reused client per channel (see core/broker.py).
CELERY_BROKER_TRANSPORT = "core.broker:Transport" if CELERY_BROKER_URL.startswith("redis://") else None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    "socket_connect_timeout": 1.0,
    "socket_timeout": 5.0,
    "retry_on_timeout": False,
    "max_connections": 20,
}
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
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
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
CELERY_TASK_QUEUES = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES)
# Routing by task-name prefix: the part before the first dot names the queue.
CELERY_TASK_ROUTES = {
    "notifications.*": {"queue": "notifications", "routing_key": "notifications"},
    "recurring.*": {"queue": "recurring", "routing_key": "recurring"},
    "webhooks.*": {"queue": "webhooks", "routing_key": "webhooks"},
    "analytics.*": {"queue": "analytics", "routing_key": "analytics"},
    "reminders.*": {"queue": "reminders", "routing_key": "reminders"},
    "core.*": {"queue": "default", "routing_key": "default"},
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
CELERY_BEAT_MAX_LOOP_INTERVAL = 10
# Schedules are data in django-celery-beat's tables, seeded create-only by `manage.py seed_schedules`.
CELERY_BEAT_SCHEDULE = {}

# After a failed publish, this process skips publishing for this long (rows wait for the sweep).
PUBLISH_BREAKER_SECONDS = float(os.environ.get("PUBLISH_BREAKER_SECONDS", "5"))

# Rows still pending this long after their last publish are re-published by core.sweep_pending.
OUTBOX_SWEEP_AFTER_SECONDS = int(os.environ.get("OUTBOX_SWEEP_AFTER_SECONDS", "120"))
OUTBOX_SWEEP_BATCH = 500
