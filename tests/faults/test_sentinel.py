"""Redis Sentinel: the primary SIGKILLed under API writes; web, worker, beat and liveness follow the failover.

A private primary, a replica and three sentinels (quorum 2, down-after-milliseconds 5000: the
operator's Sentinel settings, not ours); our own timings are the shipped ones.
"""

import concurrent.futures
import itertools
import shutil
import signal
import subprocess
import time

import pytest
import redis
from django.utils import timezone

from core.schedules import seed_schedules
from notifications.models import EmailState, Notification
from tests.faults.test_broker_outage import _data, _writes
from tests.support import free_port, wait_until

pytestmark = pytest.mark.faults
MASTER = "taskmgmt"
WRITES = 300


class Group:
    def __init__(self, workdir):
        self.dir = workdir
        self.procs = {}
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]

    def _server(self, name, port, *extra):
        data = self.dir / name
        data.mkdir()
        self.procs[name] = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "yes", "--dir", str(data), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _ping(port), f"{name} to start", timeout=10, step=0.05)

    def start(self):
        self._server("primary", self.primary_port)
        self._server("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        wait_until(
            lambda: redis.Redis(port=self.replica_port).info("replication").get("master_link_status") == "up",
            "the replica to sync",
            timeout=20,
            step=0.1,
        )
        for i, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nsentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 5000\nsentinel failover-timeout {MASTER} 20000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self.procs[f"sentinel{i}"] = subprocess.Popen(
                [shutil.which("redis-server"), str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_until(lambda port=port: _ping(port), "a sentinel to start", timeout=10, step=0.05)
        wait_until(lambda: self.primary() == self.primary_port, "the sentinels to agree", timeout=20, step=0.2)

    def primary(self):
        for port in self.sentinel_ports:
            try:
                host, found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(MASTER)
                return int(found)
            except (redis.RedisError, TypeError):
                continue
        return None

    def kill_primary(self):
        self.procs["primary"].send_signal(signal.SIGKILL)
        self.procs["primary"].wait(timeout=10)

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)

    def env(self):
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
            "REDIS_SENTINEL_MASTER": MASTER,
        }


def _ping(port):
    try:
        return redis.Redis(port=port, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


def test_primary_sigkilled_under_writes_everything_follows_the_failover(stack, smtp, tmp_path):
    group = Group(tmp_path)
    try:
        group.start()
        stack.env.update(group.env())
        token, members, tasks = _data()
        seed_schedules()
        stack.web(workers=2, threads=8)
        stack.worker(concurrency=4)
        stack.beat()
        writes = _writes(members, tasks)

        def send(op):
            method, url, body = op
            with stack.client(token) as client:
                return getattr(client, method)(url, json=body).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, itertools.islice(writes, 100)))
            group.kill_primary()
            killed_at, killed_from = time.monotonic(), timezone.now()
            statuses += pool.map(send, itertools.islice(writes, 100))
            wait_until(
                lambda: group.primary() == group.replica_port,
                "the sentinels to promote the replica",
                timeout=60,
                step=0.1,
            )
            promoted = time.monotonic() - killed_at
            statuses += pool.map(send, itertools.islice(writes, 100))
        wait_until(
            lambda: Notification.objects.filter(email_state=EmailState.SENT).count() == WRITES,
            "every notification email to be sent",
            timeout=180,
            step=0.25,
        )
        recovery = time.monotonic() - killed_at
        # Rows the web could not publish during the failover (breaker) and a sweep re-published.
        swept = Notification.objects.filter(created_at__gte=killed_from, enqueued_at__isnull=False).count()
    finally:
        group.stop()

    errors = [s for s in statuses if s >= 300]
    assert len(statuses) == WRITES and not errors, f"{len(errors)} API errors: {sorted(set(errors))}"
    ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert len(set(ids)) == WRITES, "lost emails"
    duplicates = len(ids) - len(set(ids))
    assert duplicates == 0
    print(
        f"\nFAULT sentinel-failover (primary SIGKILLed; down-after 5 s): writes {WRITES}, API errors 0/{WRITES}, "
        f"emails {len(set(ids))}/{WRITES}, duplicates {duplicates}, replica promoted {promoted:.1f}s after the kill, "
        f"{swept} rows left pending by the web and swept, all sent {recovery:.1f}s after the kill (shipped timings)"
    )
