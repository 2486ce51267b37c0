"""A live stack for the security suite: gunicorn (`sys.executable -m gunicorn`) on a free port and a real Celery
worker, both on the test's database and Redis (the subprocess_env fixture), with an access log to count statuses."""

import collections
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
# gunicorn access log: status code, request line
ACCESS_FORMAT = '%(s)s "%(r)s"'


class LiveStack:
    def __init__(self, env, logdir):
        self.env = dict(env)
        self.logdir = Path(logdir)
        self.procs = []
        self.url = None
        self.access_log = self.logdir / "access.log"

    def _spawn(self, name, argv, env):
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        return proc

    def web(self, workers=2, threads=4, **env):
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
                "--timeout",
                "60",
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                ACCESS_FORMAT,
                "--log-level",
                "warning",
            ],
            {**self.env, **env},
        )
        self.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: self._answers(port), "gunicorn to listen", timeout=60, step=0.2)
        return self.url

    def worker(self, **env):
        return self._spawn(
            "worker",
            [
                sys.executable,
                "manage.py",
                "celery_worker",
                "--queues",
                "default,notifications,recurring,webhooks,analytics,reminders",
                "--concurrency",
                "2",
                "--pool",
                "threads",
                "--loglevel",
                "WARNING",
                "--hostname",
                f"live-{free_port()}@%h",
            ],
            {**self.env, **env},
        )

    @staticmethod
    def _answers(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def statuses(self):
        """Counter of HTTP statuses the server answered, from its access log."""
        counts = collections.Counter()
        if self.access_log.exists():
            for line in self.access_log.read_text(errors="replace").splitlines():
                head = line.split(" ", 1)[0]
                if head.isdigit():
                    counts[int(head)] += 1
        return counts

    def server_errors(self):
        return [line for line in self.access_log.read_text(errors="replace").splitlines() if line.startswith("5")]

    def stop(self):
        for proc, _log in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, log in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
