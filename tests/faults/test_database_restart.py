"""PostgreSQL restarted under a running worker: tasks fail, retry and finish, with no half-written rows."""

import concurrent.futures
import json
import subprocess
import sys

import psycopg
import pytest

from tests.faults.conftest import ROOT, Stack
from tests.support import wait_until

pytestmark = pytest.mark.faults
WRITES = 200

SEED = """
from accounts.services import api_token_create
from tasks_app.models import Role
from tasks_app.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory
owner = UserFactory(username="pg-owner")
project = ProjectFactory(owner=owner)
members = [MembershipFactory(project=project, user=UserFactory(username=f"pg-m{i}"), role=Role.MEMBER).user.pk
           for i in range(4)]
tasks = [TaskFactory(project=project, created_by=owner).pk for _ in range(20)]
from core.schedules import seed_schedules
from django_celery_beat.models import IntervalSchedule, PeriodicTask
seed_schedules()
sweep = PeriodicTask.objects.get(name="Sweep Pending Side Effects")
sweep.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
sweep.save()
print(json.dumps({"token": api_token_create(user=owner, name="faults")[1], "members": members, "tasks": tasks}))
"""


def test_postgres_restart_under_running_worker(private_postgres, private_redis, smtp, tmp_path, subprocess_env):
    smtp.inbox.delay = 0.1  # 100 ms per message, so the worker is mid-stream when PostgreSQL restarts
    env = dict(
        subprocess_env,
        DATABASE_URL=private_postgres.url,
        TEST_REDIS_URL=private_redis.url,
        OUTBOX_SWEEP_AFTER_SECONDS="5",
        TEST_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        CONN_MAX_AGE="0",
        # Batches of 5 (not 50): rows are recorded sent a batch at a time, and the restart must land while some
        # are sent and most are not. With 50 and coalesced wake-ups, four threads' batches finish together.
        NOTIFICATIONS_EMAIL_BATCH_SIZE="5",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--run-syncdb", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    seeded = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", "import json\n" + SEED],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads(seeded.stdout.strip().splitlines()[-1])

    stack = Stack(env, tmp_path)
    try:
        stack.web()

        def write(i):
            task = data["tasks"][i % len(data["tasks"])]
            with stack.client(data["token"]) as client:
                if i % 2:
                    return client.post(f"/api/v1/tasks/{task}/comments/", json={"body": f"@pg-m{i % 4} #{i}"})
                return client.patch(f"/api/v1/tasks/{task}/", json={"assignee": data["members"][(i // 2) % 4]})

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = [r.status_code for r in pool.map(write, range(WRITES))]
        assert statuses.count(200) + statuses.count(201) == WRITES

        stack.worker(concurrency=4)
        stack.beat()  # runs the sweep that re-publishes messages lost while the database was down
        db = psycopg.connect(private_postgres.url.replace("postgres://", "postgresql://"), autocommit=True)

        def sent():
            try:
                with psycopg.connect(private_postgres.url.replace("postgres://", "postgresql://")) as conn:
                    return conn.execute(
                        "SELECT count(*) FROM notifications_notification WHERE email_state = 'sent'"
                    ).fetchone()[0]
            except psycopg.OperationalError:
                return 0

        db.close()
        wait_until(lambda: sent() >= 20, "the worker to be mid-stream", timeout=60, step=0.2)
        sent_before = sent()
        private_postgres.restart()  # drops every connection of web and worker
        try:
            wait_until(lambda: sent() == WRITES, "every email after the restart", timeout=240, step=1.0)
        except AssertionError:
            with psycopg.connect(private_postgres.url.replace("postgres://", "postgresql://")) as conn:
                states = conn.execute(
                    "SELECT email_state, email_attempts, count(*) FROM notifications_notification GROUP BY 1, 2"
                ).fetchall()
            queued = {q: private_redis.client().llen(q) for q in ("notifications", "default")}
            raise AssertionError(f"states {states}; queued {queued}; worker log tail: {stack.log('worker')[-3000:]}")
        assert sent_before < WRITES, "the restart did not happen under load"
    finally:
        stack.stop_all()

    with psycopg.connect(private_postgres.url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute("SELECT email_state, count(*) FROM notifications_notification GROUP BY 1").fetchall()
        comments = conn.execute("SELECT count(*) FROM tasks_app_comment").fetchone()[0]
        mentions = conn.execute("SELECT count(*) FROM notifications_notification WHERE kind = 'mentioned'").fetchone()[
            0
        ]
        reclaimed = conn.execute("SELECT count(*) FROM notifications_notification WHERE email_attempts > 1").fetchone()[
            0
        ]
    assert dict(rows) == {"sent": WRITES}
    assert comments == mentions == WRITES // 2  # no comment without its notification, no extra rows
    ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert len(set(ids)) == WRITES
    print(
        f"\nFAULT postgres-restart: emails {len(set(ids))}/{WRITES}, duplicates {len(ids) - len(set(ids))}, "
        f"sent before restart {sent_before}, rows claimed again after a failed attempt {reclaimed}"
    )
