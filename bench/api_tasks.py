"""GET /api/v1/tasks/?page_size=50 under gunicorn vs a bare Django view returning the same JSON bytes.

Usage: .venv/bin/python bench/api_tasks.py [--duration 10] [--workers 2] [--connections 8]
Both servers run the same gunicorn configuration, one after the other, on this machine; the load comes
from wrk (Debian's package; installed if missing and possible) or, failing that, a Python client.
Target: ours / bare >= 0.5.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time

from _common import ROOT, report, setup_django


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed():
    from rest_framework.authtoken.models import Token

    from tasks_app.models import Membership, Project, Task
    from tasks_app.tests.factories import UserFactory

    user = UserFactory(username="bench-api")
    token, _ = Token.objects.get_or_create(user=user)
    project = Project.objects.filter(name="bench-api").first()
    if project is None:
        project = Project.objects.create(name="bench-api", owner=user)
        Membership.objects.create(project=project, user=user, role="owner")
        Task.objects.bulk_create(
            [Task(project=project, title=f"Benchmark task {i}", description="x" * 200, assignee=user,
                  created_by=user, priority=1 + i % 4) for i in range(60)]
        )
    return token.key


def serve(settings_module, port, workers, env):
    env = dict(env, DJANGO_SETTINGS_MODULE=settings_module)
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "taskmgmt.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def ensure_wrk():
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return bool(shutil.which("wrk"))


def load(url, token, duration, connections):
    if ensure_wrk():
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-H",
                              f"Authorization: Token {token}", url], capture_output=True, text=True).stdout
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if non2xx:
            raise RuntimeError(f"{non2xx.group(1)} error responses from {url}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "wrk"
    import concurrent.futures

    import httpx

    def worker(_):
        n, end = 0, time.monotonic() + duration
        with httpx.Client(headers={"Authorization": f"Token {token}"}) as client:
            while time.monotonic() < end:
                client.get(url).raise_for_status()
                n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        total = sum(pool.map(worker, range(connections)))
    return total / duration, "python threads"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    setup_django()
    token = seed()
    from django.db import connection
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/v1/tasks/?page_size=50")
    assert response.status_code == 200 and len(response.json()["results"]) == 50
    body_path = ROOT / "var" / "bench-bare-body.json"
    body_path.write_bytes(response.content)
    connection.close()

    env = dict(os.environ, BENCH_BARE_BODY=str(body_path), CONN_MAX_AGE="60",
               PYTHONPATH=str(ROOT))
    results = {}
    for name, settings_module in [("ours", "taskmgmt.settings.test"), ("bare", "bench.bare_settings")]:
        port = free_port()
        proc = serve(settings_module, port, args.workers, env)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/tasks/?page_size=50"
            load(url, token, 2, args.connections)  # warm-up
            results[name], tool = load(url, token, args.duration, args.connections)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        print(f"{name}: {results[name]:,.0f} req/s ({tool}, {args.connections} connections, "
              f"{args.workers} gunicorn workers, {len(response.content):,} bytes per response)")
    report("GET /api/v1/tasks/?page_size=50 under gunicorn vs bare Django view", ours=results["ours"],
           baseline=results["bare"], unit="req/s", target=">= 0.5")


if __name__ == "__main__":
    sys.exit(main())
