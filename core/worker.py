"""Worker-side wiring: every worker process runs a liveness heartbeat (core/liveness.py), and a worker
that (re)connects to the broker queues a sweep of the rows left pending while it was away."""

import functools
import logging
import threading
import time

from celery import bootsteps, signals
from celery.worker.consumer import Consumer as _Consumer

logger = logging.getLogger(__name__)


@signals.worker_process_init.connect(dispatch_uid="core.liveness.child")
@signals.worker_ready.connect(dispatch_uid="core.liveness.main")
def _start_heartbeat(**kwargs):
    from core import liveness

    liveness.start()


def keep_database_connections(app):
    """This process's worker keeps its database connections across tasks for WORKER_CONN_MAX_AGE seconds.

    Celery's Django fixup closes every connection before and after each task (unless CELERY_DB_REUSE_MAX, which
    keeps them blindly, broken ones too). Here its per-task close becomes Django's own end-of-request rule,
    `close_old_connections()`: a connection is closed once older than CONN_MAX_AGE or after a database error that
    left it unusable, and with CONN_HEALTH_CHECKS the next task checks it before use (a restarted server is
    survived). The fixup's close after a fork (prefork children) is untouched. With the shipped CONN_MAX_AGE=0
    every task opened a connection: about 3 ms of a 13 ms notification task in a profile (docs/deployment.md)."""
    from django.conf import settings
    from django.db import close_old_connections

    from core import conf

    age = conf.WORKER_CONN_MAX_AGE
    if age is None:
        return
    for alias in settings.DATABASES:
        settings.DATABASES[alias]["CONN_MAX_AGE"] = age  # the dict every connection of this alias reads
    for fixup in app._fixups or ():
        if hasattr(fixup, "worker_fixup"):
            fixup.worker_fixup.close_database = close_old_connections


@signals.celeryd_init.connect(dispatch_uid="core.worker.conn_max_age")
def _keep_database_connections(instance=None, **kwargs):
    """Sent only by the `celery worker` program (also `manage.py celery_worker`), before its pool starts, so a
    worker run inside another process (the test suite's) leaves that process's connections alone."""
    if getattr(instance, "app", None) is not None:
        keep_database_connections(instance.app)


@signals.worker_process_shutdown.connect(dispatch_uid="core.liveness.child_exit")
@signals.worker_shutdown.connect(dispatch_uid="core.liveness.main_exit")
def _stop_heartbeat(**kwargs):
    from core import liveness

    liveness.stop()


class SweepOnConnect(bootsteps.StartStopStep):
    """Runs each time the consumer (re)connects. On a reconnection (the broker came back after an
    outage) rows left pending meanwhile are swept at once instead of after OUTBOX_SWEEP_AFTER_SECONDS.
    Not at start-up: the queue then still holds those rows' messages, and re-publishing a whole backlog
    at every deploy only doubles it (a worker that died is handled by core/liveness.py)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.connections = 0

    def start(self, c):
        self.connections += 1
        if self.connections > 1:
            threading.Thread(target=queue_sweep, args=(time.time(),), name="sweep-on-connect", daemon=True).start()


def queue_sweep(before, *, attempts=30, pause=1.0):
    """Queue a sweep of the rows left pending before `before`, retrying while the publish fails.

    The consumer has just connected, so the broker is back: this process's publish breaker, maybe tripped
    by a task during the outage, is reset first (else this one publish is skipped and the rows wait for the
    periodic sweep, minutes later). A publish that still fails (the broker flapping) is retried."""
    from core.enqueue import SWEEP_TASK, breaker, publish_now_rollback_unsafe

    for _ in range(attempts):
        breaker.reset()
        if publish_now_rollback_unsafe(SWEEP_TASK, kwargs={"before": before}):
            logger.info("reconnected to the broker; queued a sweep of pending rows")
            return True
        time.sleep(pause)
    logger.warning("reconnected to the broker but could not queue a sweep; the periodic sweep will")
    return False


class Consumer(_Consumer):
    """Celery's consumer, retrying a lost broker every BROKER_RECONNECT_MAX_SECONDS at most instead of
    kombu's fixed 2, 4, 6 ... 30 s backoff (a worker came back up to 30 s after Redis did)."""

    def ensure_connected(self, conn):
        from django.conf import settings

        step = settings.BROKER_RECONNECT_MAX_SECONDS
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=min(1.0, step), interval_step=min(1.0, step), interval_max=step
        )
        return super().ensure_connected(conn)


def guard_closed_redis_channel():
    """kombu's Redis channel, once its connection is released (the broker was lost), rebuilds a connection
    pool from `self.connection.client` when it acks a message it delivered or restores its unacked ones on
    close, and raises AttributeError (`None.hostname`), which Celery treats as unrecoverable: the worker shut
    down mid-outage (seen in the broker-outage fault test; the trace of celery/kombu#582). Raise redis'
    ConnectionError instead: Celery ignores or logs it as a connection error and reconnects; the unacked
    messages come back after the visibility timeout, and the idempotent tasks skip what was done."""
    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    original = kombu_redis.Channel._connparams
    if getattr(original, "guarded", False):
        return

    @functools.wraps(original)
    def _connparams(self, *args, **kwargs):
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the channel is closed (broker connection lost)")
        return original(self, *args, **kwargs)

    _connparams.guarded = True
    kombu_redis.Channel._connparams = _connparams


def install(app):
    guard_closed_redis_channel()
    app.steps["consumer"].add(SweepOnConnect)
