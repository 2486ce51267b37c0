"""GET /api/v1/tasks/?page_size=50 under gunicorn against two baselines measured in the same run.

Usage: .venv/bin/python bench/api_tasks.py [--duration 10] [--rounds 3] [--workers 2] [--connections 8] [--conn-max-age 0]
Every server runs the same gunicorn configuration and middleware, one after the other, on this machine;
the load comes from wrk (Debian's package; installed if missing and possible) or a Python client. The four servers
run side by side and are loaded in turn, `--rounds` times; each figure is the median of its rounds.

Rows (each ours / baseline, req/s):
1. our 200 vs a view returning the prebuilt bytes of our response (target >= 0.5);
2. our 200 vs a bare Django view running the same SQL (captured from ours, token lookup included) through
   a raw cursor and building the same JSON by hand (target >= 0.6); the JSON is checked equal first;
3. our conditional GET answered 304 (If-None-Match: the list ETag) vs the prebuilt bytes (target >= 0.5).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import httpx
from _common import ROOT, report, setup_django


def seed():
    from accounts.services import api_token_create
    from tasks_app.models import Membership, Project, Task
    from tasks_app.tests.factories import UserFactory

    user = UserFactory(username="bench-api")
    key = api_token_create(user=user, name="bench")[1]
    project = Project.objects.filter(name="bench-api").first()
    if project is None:
        project = Project.objects.create(name="bench-api", owner=user)
        Membership.objects.create(project=project, user=user, role="owner")
        Task.objects.bulk_create(
            [
                Task(
                    project=project,
                    title=f"Benchmark task {i}",
                    description="x" * 200,
                    assignee=user,
                    created_by=user,
                    priority=1 + i % 4,
                )
                for i in range(60)
            ]
        )
    return key


def serve(settings_module, port, workers, env):
    from tests.support import port_open, stop_process, wait_until

    env = dict(env, DJANGO_SETTINGS_MODULE=settings_module)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "taskmgmt.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_until(lambda: port_open(port), "gunicorn to listen", timeout=30, step=0.2)
    except AssertionError:
        stop_process(proc)
        raise RuntimeError("gunicorn did not start")
    return proc


def ensure_wrk():
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            capture_output=True,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        )
    return bool(shutil.which("wrk"))


def load(url, token, duration, connections, headers=()):
    if ensure_wrk():
        extra = [arg for h in headers for arg in ("-H", h)]
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-H", f"Authorization: Token {token}", *extra, url],
            capture_output=True,
            text=True,
        ).stdout
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if non2xx:
            raise RuntimeError(f"{non2xx.group(1)} error responses from {url}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "wrk"
    import concurrent.futures

    import httpx

    def worker(_):
        n, end = 0, time.monotonic() + duration
        sent = {"Authorization": f"Token {token}", **dict(h.split(": ", 1) for h in headers)}
        with httpx.Client(headers=sent) as client:
            while time.monotonic() < end:
                client.get(url).raise_for_status()
                n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        total = sum(pool.map(worker, range(connections)))
    return total / duration, "python threads"


def capture(token):
    """Our response to the benchmarked request, and the SQL (with parameters) it ran, token lookup included."""
    from django.db import connection
    from rest_framework.test import APIClient

    queries = []

    def record(execute, sql, params, many, context):
        queries.append([sql, list(params or ())])
        return execute(sql, params, many, context)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.get("/api/v1/tasks/?page_size=50")  # a new token's first use also records last_used_at
    with connection.execute_wrapper(record):
        response = client.get("/api/v1/tasks/?page_size=50")
    assert response.status_code == 200 and len(response.json()["results"]) == 50
    assert len(queries) == 4, queries  # token, fingerprint (COUNT, MAX, last event), page, the page's labels
    return response, queries


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median of its rounds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    # The shipped default is 0 (a database connection per request; PgBouncer's transaction pooling wants it).
    parser.add_argument("--conn-max-age", type=int, default=0, help="CONN_MAX_AGE of every server (default 0)")
    args = parser.parse_args()
    setup_django()
    from tests.support import free_port, stop_process

    token = seed()
    from django.db import connection

    response, queries = capture(token)
    body_path = ROOT / "var" / "bench-bare-body.json"
    body_path.write_bytes(response.content)
    sql_path = ROOT / "var" / "bench-bare-sql.json"
    sql_path.write_text(json.dumps(queries, default=str))
    etag = response["ETag"]
    connection.close()

    env = dict(
        os.environ,
        BENCH_BARE_BODY=str(body_path),
        BENCH_BARE_SQL=str(sql_path),
        CONN_MAX_AGE=str(args.conn_max_age),
        PYTHONPATH=str(ROOT),
    )
    runs = [
        ("ours", "taskmgmt.settings.test", "/api/v1/tasks/?page_size=50", ()),
        ("ours 304", "taskmgmt.settings.test", "/api/v1/tasks/?page_size=50", (f"If-None-Match: {etag}",)),
        ("prebuilt", "bench.bare_settings", "/api/v1/tasks/?page_size=50", ()),
        ("same SQL", "bench.bare_settings", "/bare/tasks/?page_size=50", ()),
    ]
    # Every server is started and checked first; then the loads run in rounds, each server once a round, and each
    # figure is the median of its rounds: one run per server, one after the other, let a passing disturbance (or
    # a warm-up still going on) land on one figure and not on its baseline (runs a minute apart differed by 20%).
    servers, samples, tool = {}, {name: [] for name, *_ in runs}, None
    try:
        for name, settings_module, path, headers in runs:
            port = free_port()
            servers[name] = serve(settings_module, port, args.workers, env)
            url = f"http://127.0.0.1:{port}{path}"
            sent = {"Authorization": f"Token {token}", **dict(h.split(": ", 1) for h in headers)}
            check = httpx.get(url, headers=sent, timeout=120)  # a fresh worker's first answer can be slow here
            if name == "ours 304":
                assert check.status_code == 304, check.status_code
            else:
                got, want = check.json(), response.json()
                assert {**got, "next": None} == {**want, "next": None}, f"{name} answers other JSON"
            load(url, token, 2, args.connections, headers)  # warm-up
            servers[name] = (servers[name], url, headers, len(check.content))
        for _ in range(args.rounds):
            for name, (_proc, url, headers, _size) in servers.items():
                rate, tool = load(url, token, args.duration, args.connections, headers)
                samples[name].append(rate)
    finally:
        for proc, *_ in servers.values():
            stop_process(proc, timeout=20)
    results = {name: statistics.median(rates) for name, rates in samples.items()}
    for name, (_proc, _url, _headers, size) in servers.items():
        print(
            f"{name}: {results[name]:,.0f} req/s, median of {args.rounds} ({', '.join(f'{r:,.0f}' for r in samples[name])}; "
            f"{tool}, {args.connections} connections, {args.workers} gunicorn workers, "
            f"CONN_MAX_AGE={args.conn_max_age}, {size:,} bytes per response)"
        )
    report(
        "GET /api/v1/tasks/?page_size=50 under gunicorn vs prebuilt bytes",
        ours=results["ours"],
        baseline=results["prebuilt"],
        unit="req/s",
        target=">= 0.5",
    )
    report(
        "GET /api/v1/tasks/?page_size=50 vs a bare Django view running the same SQL",
        ours=results["ours"],
        baseline=results["same SQL"],
        unit="req/s",
        target=">= 0.6",
    )
    report(
        "Conditional GET /api/v1/tasks/?page_size=50 answered 304 vs prebuilt bytes",
        ours=results["ours 304"],
        baseline=results["prebuilt"],
        unit="req/s",
        target=">= 0.5",
    )


if __name__ == "__main__":
    sys.exit(main())
