"""Metrics across processes: gunicorn with several workers (multiprocess mode) and a prefork Celery
worker serving its own port."""

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.enqueue import publish_now_rollback_unsafe
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sample(text, name, **labels):
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _get(url, **kw):
    try:
        return httpx.get(url, timeout=5, **kw)
    except httpx.HTTPError:
        return None


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_gunicorn_workers_are_summed(subprocess_env, redis_clean, tmp_path):
    port = _free_port()
    env = dict(
        subprocess_env, OPS_TOKEN="tok", GUNICORN_BIND=f"127.0.0.1:{port}", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "m")
    )
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "taskmgmt/gunicorn.conf.py", "-w", "3", "taskmgmt.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(f"{base}/healthz/live"), "gunicorn to answer", timeout=30)
        with httpx.Client(base_url=base, timeout=5, headers={"Connection": "close"}) as c:
            for _ in range(30):  # new connections: spread over the three workers
                assert c.get("/healthz/ready").status_code == 200
        text = _get(f"{base}/metrics", headers={"Authorization": "Bearer tok"}).text
    finally:
        _stop(web)
    pids = {p.name.split("_")[-1] for p in (tmp_path / "m").glob("*.db")}
    assert len(pids) >= 2, "requests were served by more than one worker"
    assert _sample(text, "taskmgmt_http_requests_total", route="healthz/ready", status="200") == 30


def test_prefork_worker_serves_its_metrics_port(subprocess_env, redis_clean, tmp_path):
    port = _free_port()
    env = dict(subprocess_env, WORKER_METRICS_PORT=str(port))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "celery_worker", "-Q", "default", "-c", "2", "-P", "prefork", "-l", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(10):
            assert publish_now_rollback_unsafe("core.ping", queue="default")

        def pings():
            r = _get(url)
            return r is not None and _sample(r.text, "taskmgmt_celery_tasks_total", task="core.ping", state="success")

        wait_until(lambda: pings() == 10, "10 pings counted over both children", timeout=60)
    finally:
        _stop(worker)
        log.close()
