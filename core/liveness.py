"""Who holds a claim, and is it still alive? Claims judged by their holder's liveness, not by a lease.

Every process that runs tasks (each prefork child, a threads-pool worker, beat, a shell) is a
*holder* with a short random id. A daemon thread refreshes a Redis key `taskmgmt:alive:<id>` every
LIVENESS_INTERVAL_SECONDS with a TTL of LIVENESS_TTL_SECONDS, and records the id with the time it
was last seen in the sorted set `taskmgmt:holders`. A claim (a notification being emailed, a
webhook batch being sent) stores a token that starts with its holder's id: `claim_token()`.

A holder is *dead* when it is in the set (seen within LIVENESS_MEMORY_SECONDS) but its key has
expired: it stopped refreshing for a whole TTL (SIGKILL, OOM, host gone, link cut). The first
heartbeat thread to notice moves it to `taskmgmt:dead-holders` (`judge()`); from then on any
process retakes its claims at once (`dead_claims_q`), instead of waiting out a lease sized for the slowest task. A live
but slow task keeps its claim for ever: its process's thread keeps refreshing the key. A holder that
exits cleanly leaves the set, so it is never judged.

Safety: judgments are made only by an observer whose own heartbeat has succeeded continuously for
a whole TTL (`can_judge()`). If the store was unreachable (a Redis restart, a failover, a
partition of the observer), every live holder has had a full TTL to refresh before anyone is
judged, so an outage never makes live holders look dead. A holder that comes back after being
declared dead (a healed partition) sees it and carries on under a new id. A claim whose holder is unknown (no
entry in the set, e.g. the set was lost) falls back to the old time-based lease.

Each new death also triggers an immediate sweep (`core.sweep_pending`): on Redis the dead worker's
prefetched messages sit unacked until the visibility timeout, so the sweep re-publishes every
pending row at once (tasks are idempotent).
"""

import logging
import os
import socket
import threading
import time
import uuid

from django.conf import settings
from django.db.models import Q

logger = logging.getLogger(__name__)

HOLDERS_KEY = "taskmgmt:holders"
ALIVE_PREFIX = "taskmgmt:alive:"
DEAD_KEY = "taskmgmt:dead-holders"
SEPARATOR = "."


def _client():
    from core import redis as core_redis

    return core_redis.client()


class _Heartbeat:
    def __init__(self):
        self.lock = threading.Lock()
        self.pid = None
        self.id = None
        self.thread = None
        self.stopping = threading.Event()
        self.continuous_since = None  # monotonic time of the first beat of the current unbroken run
        self.last_ok = None

    def holder(self):
        if self.pid != os.getpid():  # a forked child is a holder of its own
            with self.lock:
                if self.pid != os.getpid():
                    self.pid, self.id = os.getpid(), uuid.uuid4().hex[:8]
                    self.thread, self.continuous_since, self.last_ok = None, None, None
                    self.stopping = threading.Event()
        return self.id

    def start(self):
        holder = self.holder()
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return holder
            self.beat()  # registered before the first claim can be taken
            self.thread = threading.Thread(target=self.run, name=f"liveness-{holder}", daemon=True)
            self.thread.start()
        return holder

    def run(self):
        while not self.stopping.wait(settings.LIVENESS_INTERVAL_SECONDS):
            self.beat()
            check_deaths()

    def beat(self):
        ttl = settings.LIVENESS_TTL_SECONDS
        now = time.monotonic()
        try:
            client = _client()
            if client.zscore(DEAD_KEY, self.id) is not None:
                # Declared dead while we were cut off (our claims were retaken): carry on under a new id.
                logger.warning("liveness: holder %s was declared dead; continuing as a new holder", self.id)
                self.id = uuid.uuid4().hex[:8]
                self.continuous_since = None
            pipe = client.pipeline(transaction=False)
            pipe.set(ALIVE_PREFIX + self.id, f"{socket.gethostname()}:{self.pid}", ex=max(1, round(ttl)))
            pipe.zadd(HOLDERS_KEY, {self.id: time.time()})
            pipe.execute()
        except Exception as exc:  # never let the heartbeat take the worker down
            logger.warning("liveness heartbeat failed: %s", type(exc).__name__)
            self.continuous_since = None
            return False
        # A gap longer than the TTL breaks the run: our own key may have expired meanwhile.
        if self.last_ok is None or now - self.last_ok > ttl or self.continuous_since is None:
            self.continuous_since = now
        self.last_ok = now
        return True

    def stop(self):
        """Clean exit: leave the set, so nobody ever judges (or waits for) this holder."""
        if self.pid != os.getpid() or self.id is None:
            return
        self.stopping.set()
        try:
            pipe = _client().pipeline(transaction=False)
            pipe.delete(ALIVE_PREFIX + self.id)
            pipe.zrem(HOLDERS_KEY, self.id)
            pipe.execute()
        except Exception as exc:
            logger.warning("liveness: could not deregister: %s", type(exc).__name__)


_heartbeat = _Heartbeat()


def start():
    """Start this process's heartbeat (idempotent). Celery signals call it in every worker process."""
    return _heartbeat.start()


def stop():
    _heartbeat.stop()


def holder_id():
    return _heartbeat.start()


def claim_token(suffix=None):
    """A claim token naming this process as the holder: `<holder>.<suffix or random>`."""
    return f"{holder_id()}{SEPARATOR}{suffix or uuid.uuid4().hex}"


def short_claim_token():
    """A 32-character token (webhook deliveries' claim_token column)."""
    return f"{holder_id()}{SEPARATOR}{uuid.uuid4().hex[:23]}"


def can_judge():
    """True when this process's heartbeat has worked continuously for a whole TTL (see the module doc)."""
    since = _heartbeat.continuous_since if _heartbeat.pid == os.getpid() else None
    return since is not None and time.monotonic() - since >= settings.LIVENESS_TTL_SECONDS


def dead_holders():
    """Ids of holders declared dead (by any judge) within LIVENESS_MEMORY_SECONDS. Empty if Redis fails."""
    try:
        names = _client().zrangebyscore(DEAD_KEY, time.time() - settings.LIVENESS_MEMORY_SECONDS, "+inf")
    except Exception as exc:
        logger.warning("liveness: cannot read dead holders: %s", type(exc).__name__)
        return []
    return [n.decode() if isinstance(n, bytes) else n for n in names]


def judge():
    """Declare dead every recent holder whose key expired; returns the ones declared now. Only a
    process whose own heartbeat has been continuous for a whole TTL judges (see the module doc)."""
    if not can_judge():
        return []
    now = time.time()
    memory = settings.LIVENESS_MEMORY_SECONDS
    try:
        client = _client()
        recent = [
            n.decode() if isinstance(n, bytes) else n for n in client.zrangebyscore(HOLDERS_KEY, now - memory, "+inf")
        ]
        if not recent:
            return []
        pipe = client.pipeline(transaction=False)
        for name in recent:
            pipe.exists(ALIVE_PREFIX + name)
        present = pipe.execute()
        fresh = []
        for name, alive in zip(recent, present, strict=True):
            if alive:
                continue
            # ZREM returns 1 to exactly one judge: that one declares the death.
            if client.zrem(HOLDERS_KEY, name):
                client.zadd(DEAD_KEY, {name: now})
                fresh.append(name)
        client.zremrangebyscore(HOLDERS_KEY, "-inf", now - memory)
        client.zremrangebyscore(DEAD_KEY, "-inf", now - memory)
    except Exception as exc:
        logger.warning("liveness: cannot judge holders: %s", type(exc).__name__)
        return []
    return fresh


def dead_claims_q(field, dead=None):
    """A Q matching rows whose `field` (a claim token) names a dead holder. Matches nothing if none."""
    dead = dead_holders() if dead is None else dead
    q = Q(pk__in=[])
    for name in dead:
        q |= Q(**{f"{field}__startswith": f"{name}{SEPARATOR}"})
    return q


def check_deaths():
    """Called by every heartbeat thread: on a new death, queue a sweep at once."""
    fresh = judge()
    if fresh:
        from core.enqueue import publish_now_rollback_unsafe

        logger.warning("liveness: holders %s stopped answering; sweeping now", ", ".join(sorted(fresh)))
        publish_now_rollback_unsafe("core.sweep_pending", kwargs={"before": time.time()})
    return fresh
