"""Real processes: a beat process on the DatabaseScheduler, /healthz, and the operator scripts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.beat import BEAT_TICK_KEY, record_beat_tick
from core.schedules import seed_schedules
from tests.support import stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


def test_real_beat_sends_due_periodic_task_to_its_queue(subprocess_env, redis_clean, tmp_path):
    seed_schedules()
    row = PeriodicTask.objects.get(name="Process Recurring Tasks")
    # As an admin would: make it due every 2 seconds.
    row.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    row.save()
    log = open(tmp_path / "beat.log", "w")
    beat = subprocess.Popen(
        [sys.executable, "manage.py", "celery_beat", "--loglevel", "INFO"],
        cwd=ROOT,
        env=subprocess_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def sent():
            return [json.loads(m)["headers"]["task"] for m in redis_clean.lrange("recurring", 0, -1)]

        wait_until(lambda: "recurring.process_recurring_tasks" in sent(), "beat to send the task (see beat.log)")
        # beat's heartbeat for /healthz, recorded right after the tick that sent it
        wait_until(lambda: redis_clean.get(BEAT_TICK_KEY) is not None, "beat's heartbeat", timeout=15)
    finally:
        stop_process(beat)
        log.close()


def test_healthz_status_ok_with_worker_and_beat(celery_worker, client, settings):
    from core.beat import _record_role

    settings.OPS_TOKEN = "t0ken"
    record_beat_tick()
    _record_role("leader", 0)
    # The in-process worker answers its first control ping once it is consuming: poll, do not time it.
    body = wait_until(
        lambda: (b := client.get("/healthz/status", HTTP_AUTHORIZATION="Bearer t0ken").json())["status"] == "ok" and b,
        "the status to be ok (a control-ping reply within 1 s; slow under heavy load)",
        timeout=60,
        step=0.5,
    )
    assert body["checks"]["worker"]["workers"]


def test_healthz_status_503_without_worker_or_beat_while_ready_stays_200(
    transactional_db, redis_clean, client, settings
):
    settings.OPS_TOKEN = "t0ken"
    response = client.get("/healthz/status", HTTP_AUTHORIZATION="Bearer t0ken")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert not checks["worker"]["ok"] and not checks["beat"]["ok"]
    assert client.get("/healthz").status_code == 200  # the load balancer keeps sending traffic


def test_healthz_503_when_broker_down(transactional_db, client, settings):
    from core import redis as core_redis

    settings.CELERY_BROKER_URL = settings.REDIS_URL = "redis://127.0.0.1:1/0"
    core_redis.client.cache_clear()
    try:
        response = client.get("/healthz")
    finally:
        core_redis.client.cache_clear()
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_scripts_test_celery_passes_against_a_running_worker(celery_worker, subprocess_env):
    seed_schedules()
    result = subprocess.run(
        [sys.executable, "scripts/test_celery.py", "--timeout", "20"],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 passed, 0 failed" in result.stdout


def test_scripts_test_celery_fails_without_schedules(celery_worker, subprocess_env):
    result = subprocess.run(
        [sys.executable, "scripts/test_celery.py", "--timeout", "20"],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "[FAIL] spec schedules in the database" in result.stdout


def test_monitor_without_argument_prints_usage():
    result = subprocess.run(["bash", "scripts/celery/monitor.sh"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stdout and "watch" in result.stdout


def test_monitor_once_reports_queues_and_workers(celery_worker, subprocess_env):
    record_beat_tick()
    result = subprocess.run(
        ["bash", "scripts/celery/monitor.sh", "once"],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for word in ["notifications", "webhooks", "RECENT FAILURES", "BEAT: last tick"]:
        assert word in result.stdout


def test_celery_worker_command_rejects_unknown_queue(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="unknown queues: bogus"):
        call_command("celery_worker", "--queues", "bogus")


def _worker_sessions(subprocess_env, tmp_path, pings, **env):
    """Sessions a real `manage.py celery_worker` opens on the test database while it runs `pings` tasks."""
    from django.db import connection
    from django_celery_results.models import TaskResult

    from core.enqueue import publish_now_rollback_unsafe

    def sessions():
        with connection.cursor() as cur:
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return cur.fetchone()[0]

    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "celery_worker", "--queues", "default", "--pool", "prefork", "-c", "1"],
        cwd=ROOT,
        env={**subprocess_env, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    pings_stored = TaskResult.objects.filter(task_name="core.ping")
    start = pings_stored.count()
    try:
        assert publish_now_rollback_unsafe("core.ping")
        wait_until(lambda: pings_stored.count() == start + 1, "the worker (worker.log)")
        before = sessions()  # the worker is up and has run one task
        for _ in range(pings):
            assert publish_now_rollback_unsafe("core.ping")
        wait_until(lambda: pings_stored.count() == start + 1 + pings, "the pings")
        return sessions() - before
    finally:
        stop_process(worker)
        log.close()


def test_a_real_worker_keeps_its_database_connection_across_tasks(subprocess_env, redis_clean, tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("counts sessions in pg_stat_database")
    # Shipped: WORKER_CONN_MAX_AGE=300 (core/worker.py), under the web's CONN_MAX_AGE=0.
    assert _worker_sessions(subprocess_env, tmp_path, 20, CONN_MAX_AGE="0") <= 2
    # Turned off, each task opens its own (Celery's Django fixup closes around every task).
    assert _worker_sessions(subprocess_env, tmp_path, 20, CONN_MAX_AGE="0", WORKER_CONN_MAX_AGE="") >= 20
