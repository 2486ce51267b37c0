"""The one way services start background work.

A side effect is first a row written in the caller's transaction (a notification, a delivery, an
export job...). `enqueue_on_commit` publishes a message carrying only ids once that transaction
commits; a rollback publishes nothing. If the broker is down the publish fails fast (bounded
retries), the request still succeeds, and the row stays pending until `core.sweep_pending`
re-publishes it (see core/outbox.py).
"""

import functools
import logging
import math
import threading
import time

from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

SWEEP_TASK = "core.sweep_pending"
try:  # RabbitMQ: a channel error (e.g. a delayed-delivery exchange a worker has not declared yet) fails the publish
    from amqp.exceptions import AMQPError
except ImportError:  # pragma: no cover - py-amqp comes with kombu
    AMQPError = OSError
BROKER_ERRORS = (KombuOperationalError, RedisError, ConnectionError, OSError, TimeoutError, AMQPError)


class _Breaker:
    """After a failed publish, skip publishing for a few seconds instead of paying the retry delay on
    every request of an outage. Skipped rows stay pending, and the sweep publishes them later."""

    def __init__(self):
        self._lock = threading.Lock()
        self.open_until = 0.0
        self.tripped = False  # since the last successful publish

    def is_open(self):
        return time.monotonic() < self.open_until

    def trip(self):
        with self._lock:
            self.open_until = time.monotonic() + settings.PUBLISH_BREAKER_SECONDS
            self.tripped = True

    def closed_again(self):
        """True exactly once after a publish succeeds following a failure (the broker is back)."""
        with self._lock:
            was, self.tripped = self.tripped, False
            return was

    def reset(self):
        with self._lock:
            self.open_until = 0.0
            self.tripped = False


breaker = _Breaker()


def _check_ids_only(args, kwargs):
    for value in list(args or ()) + list((kwargs or {}).values()):
        if isinstance(value, (list, tuple)):
            _check_ids_only(value, None)
        elif not (value is None or isinstance(value, (int, str, bool, float))):
            raise TypeError(f"task arguments must be ids or plain values, got {type(value).__name__}")


def masked_repr(value):
    """What Celery shows and stores for an argument: numbers stay, every string is masked.

    Tasks take ids; a string argument may be an address or a token, so it never reaches
    TaskResult.task_args, events or worker logs.
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {masked_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(masked_repr(v) for v in value) + "]"
    if isinstance(value, str):
        return "'***'"
    return repr(value)


def publish_now_rollback_unsafe(task_name, *, args=(), kwargs=None, countdown=None, **options):
    """Publish immediately, outside any transaction logic. Returns True when the broker took it.

    Only sweeps, tasks and commands call this directly; request code uses `enqueue_on_commit`.
    """
    from taskmgmt.celery import app

    _check_ids_only(args, kwargs)
    if countdown is not None and countdown > settings.MAX_COUNTDOWN_SECONDS:
        raise ValueError("countdowns longer than MAX_COUNTDOWN_SECONDS must be rows plus a sweep")
    if countdown and settings.BROKER_IS_AMQP:
        countdown = max(1, math.ceil(countdown))  # native delayed delivery: whole seconds, never 0
    if breaker.is_open():
        logger.info("broker marked down; %s left pending for the sweep", task_name)
        return False
    try:
        app.send_task(
            task_name,
            args=list(args or ()),
            kwargs=kwargs or {},
            countdown=countdown,
            argsrepr=masked_repr(list(args or ())),
            kwargsrepr=masked_repr(kwargs or {}),
            # On Redis a publish is an LPUSH onto the queue's list, which needs no binding, so skip
            # kombu's per-publish declare. On RabbitMQ keep it (cached per connection): the web may
            # publish before any worker has declared the queues.
            **({} if settings.BROKER_IS_AMQP else {"declare": []}),
            **options,
        )
    except BROKER_ERRORS as exc:
        breaker.trip()
        logger.warning("publish of %s failed (%s); the row stays pending for the sweep", task_name, type(exc).__name__)
        return False
    if breaker.tripped and breaker.closed_again():
        # The broker is back: rows this process left pending are older than now; sweep them at once
        # rather than after OUTBOX_SWEEP_AFTER_SECONDS and the next periodic sweep.
        logger.info("broker back; queueing a sweep of the rows left pending")
        publish_now_rollback_unsafe(SWEEP_TASK, kwargs={"before": time.time()})
    return True


def enqueue_on_commit(task_name, *, args=(), kwargs=None, using=None, **options):
    """Publish `task_name(*args)` after the current transaction commits (at once if there is none)."""
    _check_ids_only(args, kwargs)
    transaction.on_commit(
        functools.partial(publish_now_rollback_unsafe, task_name, args=args, kwargs=kwargs, **options),
        using=using,
    )


# --- coalesced publishing (a doorbell) ----------------------------------------------------------------------------
# Many small transactions each writing one row for the same consumer (a notification email per request) would each
# publish a message that mostly finds its row already taken by a batch. Coalesced, a commit publishes only when no
# earlier message under the same key is still waiting: the first write "rings" (SET NX with a TTL in the cache) and
# publishes; later writes see the bell rung and publish nothing. The consumer "answers" (deletes the key) before it
# claims rows, and takes every waiting row, so a row committed before the answer is claimed by that consumer and a
# row committed after it rings again. Nothing depends on the bell for safety: rows stay pending until sent, a lost
# message is covered by the TTL (writes ring again) and the sweep (core/outbox.py), and when the cache is down every
# commit publishes as without coalescing.
DOORBELL_PREFIX = "doorbell:"


def enqueue_on_commit_coalesced(task_name, *, args=(), key, seconds, using=None, **options):
    """`enqueue_on_commit`, publishing only if no message rung under `key` in the last `seconds` is unanswered.

    seconds=0: a message per call (plain `enqueue_on_commit`)."""
    if not seconds:
        return enqueue_on_commit(task_name, args=args, using=using, **options)
    _check_ids_only(args, None)
    transaction.on_commit(
        functools.partial(_publish_coalesced, task_name, args=args, key=key, seconds=seconds, options=options),
        using=using,
    )


def _publish_coalesced(task_name, *, args, key, seconds, options):
    from django.core.cache import cache

    if breaker.is_open():
        return publish_now_rollback_unsafe(task_name, args=args, **options)  # logs and leaves it for the sweep
    try:
        rung = cache.add(DOORBELL_PREFIX + key, 1, timeout=seconds)
    except (RedisError, OSError) as exc:
        logger.warning("doorbell %s unavailable (%s); publishing", key, type(exc).__name__)
        rung = True
    if not rung:
        return True  # a message is on its way and its consumer has not looked for rows yet
    if publish_now_rollback_unsafe(task_name, args=args, **options):
        return True
    coalesce_answer(key)  # that message did not go: the next commit rings again
    return False


def coalesce_answer(key):
    """Called by a consumer of coalesced messages before it looks for rows: the next commit publishes again."""
    from django.core.cache import cache

    try:
        cache.delete(DOORBELL_PREFIX + key)
    except (RedisError, OSError) as exc:  # the key expires on its own
        logger.warning("doorbell %s not answered (%s)", key, type(exc).__name__)
