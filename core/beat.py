"""django-celery-beat's DatabaseScheduler with a leader lock, so several beats can run and exactly one schedules.

- The lock lives in the database: on PostgreSQL a session-level advisory lock held on a connection of its
  own (it dies with that connection, so a SIGKILLed leader or one whose connection is gone releases it at
  once; TCP keepalives on both sides bound the time for a silent network loss); on SQLite an exclusive
  `flock` on a file next to the database (it dies with the process; SQLite is one host anyway).
- A standby tries the lock every BEAT_STANDBY_POLL_SECONDS. A leader re-checks its lock at the start of
  every tick before it sends anything; if the lock connection is gone it stands down and becomes a
  standby (it cannot get the lock back while another beat holds it).
- The lock is checked again right before each publish (a leader paused mid-tick must not send on
  resuming), and once more if that check itself took over a second (a reply read after a pause may predate
  the loss of the lock); only a pause between that check and the publish itself (microseconds) is uncovered,
  and the tasks' data-level idempotency covers it.
- Each entry's `last_run_at` is written to the database before its message is published
  (persist-then-publish), so a new leader never re-sends a run the old one already sent; a leader killed
  between the write and the publish loses that one run (a miss inside the takeover window, never a
  duplicate). Tasks stay idempotent at the data level regardless.
- The leader records a heartbeat (last tick) and its identity in Redis for /healthz/status, metrics and
  the operations page.
"""

import datetime
import fcntl
import json
import logging
import os
import socket
import time
import zlib

from django.conf import settings
from django.db import connection
from django_celery_beat.schedulers import DatabaseScheduler as _DatabaseScheduler
from django_celery_beat.schedulers import ModelEntry

from core import redis as core_redis

logger = logging.getLogger(__name__)
BEAT_TICK_KEY = "taskmgmt:beat:last_tick"
BEAT_LEADER_KEY = "taskmgmt:beat:leader"
BEAT_INSTANCES_KEY = "taskmgmt:beat:instances"
LOCK_KEY = zlib.crc32(b"taskmgmt.beat.leader")  # one advisory lock id per database
# A lock check slower than this is made again before a publish (DatabaseScheduler._still_leader).
BEAT_LOCK_CHECK_STALL_SECONDS = 1.0
_monotonic = time.monotonic
INSTANCE_TTL_SECONDS = 60
SERVER_KEEPALIVES = settings.PG_SERVER_KEEPALIVES  # every connection asks for these (taskmgmt/settings/base.py)


def _with_keepalives(options):
    return options if SERVER_KEEPALIVES in options else f"{options} {SERVER_KEEPALIVES}".strip()


def instance_id():
    return f"{socket.gethostname()}:{os.getpid()}"


def record_beat_tick(now=None):
    try:
        core_redis.client().set(BEAT_TICK_KEY, str(now or time.time()), ex=24 * 3600)
    except Exception as exc:  # the heartbeat must never stop beat from scheduling
        logger.warning("could not record beat tick: %s", type(exc).__name__)


def last_beat_tick():
    value = core_redis.client().get(BEAT_TICK_KEY)
    return float(value) if value else None


def _record_role(role, since):
    now = time.time()
    try:
        r = core_redis.client()
        r.hset(BEAT_INSTANCES_KEY, instance_id(), json.dumps({"role": role, "seen": now, "since": since}))
        r.expire(BEAT_INSTANCES_KEY, 24 * 3600)
        if role == "leader":
            r.set(BEAT_LEADER_KEY, json.dumps({"id": instance_id(), "since": since}), ex=INSTANCE_TTL_SECONDS)
    except Exception as exc:
        logger.warning("could not record beat role: %s", type(exc).__name__)


def beat_instances(now=None):
    """{id: {"role", "seen", "since"}} of the beats seen in the last minute, and the leader's id (or None)."""
    now = now or time.time()
    r = core_redis.client()
    out = {}
    for key, value in r.hgetall(BEAT_INSTANCES_KEY).items():
        info = json.loads(value)
        if now - info["seen"] <= INSTANCE_TTL_SECONDS:
            out[key.decode()] = info
    leader = r.get(BEAT_LEADER_KEY)
    return out, (json.loads(leader)["id"] if leader else None)


class PostgresLeaderLock:
    def __init__(self):
        self.conn = None

    def _connect(self):
        params = dict(connection.get_connection_params())
        params.update(
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            # The server drops the session (and the lock) of a client that vanished without closing. Settings add
            # these to every connection; the lock connection keeps them even when DATABASE_SERVER_KEEPALIVES is off.
            options=_with_keepalives(params.get("options", "")),
            application_name="taskmgmt-beat-leader",
        )
        conn = connection.get_new_connection(params)
        conn.autocommit = True
        return conn

    def acquire(self):
        try:
            if self.conn is None:
                self.conn = self._connect()
            got = self.conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0]
        except Exception as exc:
            logger.warning("beat leader lock: database unreachable (%s)", type(exc).__name__)
            self.release()
            return False
        if not got:
            return False
        return True

    def held(self):
        try:
            return self.conn is not None and self.conn.execute("SELECT 1").fetchone()[0] == 1
        except Exception:
            self.release()
            return False

    def release(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


class FileLeaderLock:
    def __init__(self, path):
        self.path = path
        self.fd = None

    def acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def held(self):
        return self.fd is not None

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class NoLock:
    """BEAT_LEADER_LOCK=false: every beat schedules (the fault suite uses it to prove data-level idempotency)."""

    def acquire(self):
        return True

    def held(self):
        return True

    def release(self):
        pass


def leader_lock():
    if not settings.BEAT_LEADER_LOCK:
        return NoLock()
    if connection.vendor == "postgresql":
        return PostgresLeaderLock()
    name = str(connection.settings_dict["NAME"])
    return FileLeaderLock(f"{name}.beat-leader.lock")


class Entry(ModelEntry):
    def save(self):
        """Writes the run (last_run_at, total_run_count) and nothing else.

        django-celery-beat's save() reads the row and saves every column back: an admin edit committed between the
        two (a task disabled, a new interval) was overwritten with what beat had read, and the task kept running.
        On SQLite the save waits for the admin's write lock, which widens the window: seen in
        tests/browser/test_admin_schedules.py. An UPDATE of the two columns cannot undo anyone's edit."""
        type(self.model)._default_manager.filter(pk=self.model.pk).update(
            last_run_at=self.model.last_run_at, total_run_count=self.model.total_run_count
        )


class DatabaseScheduler(_DatabaseScheduler):
    Entry = Entry

    def __init__(self, *args, **kwargs):
        self._lock = leader_lock()
        self._leader_since = None
        super().__init__(*args, **kwargs)

    @property
    def is_leader(self):
        return self._leader_since is not None

    def _become_leader(self):
        self._leader_since = time.time()
        # Forget what this process believed while it was standby: reload every entry (and its
        # last_run_at) from the database, where the old leader wrote them before each send.
        self._dirty.clear()
        self._schedule = self.all_as_schedule()
        self._last_full_sync = datetime.datetime.now()
        self._heap = None  # rebuilt from the fresh entries on this tick
        self._heap_invalidated = False
        logger.warning("beat %s: leader (lock acquired)", instance_id())

    def _stand_down(self, why):
        logger.warning("beat %s: standing down (%s)", instance_id(), why)
        self._leader_since = None
        self._dirty.clear()
        self._lock.release()

    def tick(self, *args, **kwargs):
        if self.is_leader and not self._lock.held():
            self._stand_down("leader lock lost")
            _record_role("standby", None)
            return settings.BEAT_STANDBY_POLL_SECONDS  # give a standby its turn before trying again
        if not self.is_leader:
            if not self._lock.acquire():
                _record_role("standby", None)
                return settings.BEAT_STANDBY_POLL_SECONDS
            self._become_leader()
        record_beat_tick()
        _record_role("leader", self._leader_since)
        return super().tick(*args, **kwargs)

    def reserve(self, entry):
        new_entry = super().reserve(entry)
        if self.is_leader and self._lock.held():
            # django-celery-beat's reserve() no longer puts the new entry into self._schedule (Celery's own does).
            # The entry left there keeps the previous last_run_at: when the heap is next rebuilt from that dict
            # (after another beat's start or an admin edit marks the schedule changed) the run just sent is due
            # again and goes out twice. sync() also saves by name from that dict.
            current = (self._schedule or {}).get(new_entry.name)
            if current is entry:
                self._schedule[new_entry.name] = new_entry
            elif current is not None:  # reloaded from the database meanwhile: carry the run over
                current.model.last_run_at = current.last_run_at = new_entry.last_run_at
                current.model.total_run_count = new_entry.model.total_run_count
            self.sync()  # persist-then-publish: last_run_at is in the database before the message is sent
        else:
            self._dirty.clear()  # a beat that lost the lock writes nothing
        return new_entry

    def _still_leader(self):
        """Whether this beat still leads, checked so that a stall during the check is noticed.

        A beat frozen (SIGSTOP, a long pause) while its `SELECT 1` was in flight reads, on resuming, a reply the
        server sent before it dropped the lock connection: the check says "held" about a lock another beat holds
        by now. So a check that took longer than BEAT_LOCK_CHECK_STALL_SECONDS is made again."""
        for _ in range(3):
            started = _monotonic()
            if not (self.is_leader and self._lock.held()):
                return False
            if _monotonic() - started < BEAT_LOCK_CHECK_STALL_SECONDS:
                return True
        return False

    def apply_entry(self, entry, producer=None):
        # Checked again right before each publish, not only at the start of the tick: a leader paused
        # mid-tick (SIGSTOP, a long stall) whose lock was taken meanwhile must not send on resuming.
        if not self._still_leader():
            if self.is_leader:
                self._stand_down("leader lock lost")
            logger.warning("beat %s: not sending %s (not the leader)", instance_id(), entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def close(self):
        try:
            super().close()
        finally:
            self._lock.release()
