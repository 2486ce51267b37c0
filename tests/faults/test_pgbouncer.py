"""Behind PgBouncer in transaction pooling mode: web and a real worker reach PostgreSQL only through a
PgBouncer this test starts (CONN_MAX_AGE=0, DISABLE_SERVER_SIDE_CURSORS=True). The export flow streams
its rows, FOR UPDATE SKIP LOCKED claims (recurring engine) and the email claim all work."""

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from accounts.services import api_token_create
from core.enqueue import publish_now_rollback_unsafe
from notifications.models import EmailState, Notification
from tasks_app.models import Task
from tasks_app.services.tasks import task_assign
from tasks_app.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory
from tasks_app.tests.recurring_helpers import make_template
from tests.support import debian, free_port, port_open, wait_until

pytestmark = pytest.mark.faults


class PgBouncer:
    def __init__(self, db):
        binary, problem = debian.ensure("pgbouncer", binary="pgbouncer")
        if problem:
            pytest.skip(problem)
        import os
        import tempfile

        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="taskmgmt-pgbouncer-", dir="/tmp"))  # readable by postgres
        os.chmod(self.dir, 0o755)
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'userlist.txt'}\n"
            "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
            "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "pgbouncer", str(self.dir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), "pgbouncer to listen", timeout=20, step=0.1)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_worker_and_export_flow_through_pgbouncer_transaction_pooling(local_stack, settings, tmp_path):
    db = connection.settings_dict
    if not db["ENGINE"].endswith("postgresql"):
        pytest.skip("PgBouncer fronts PostgreSQL (run with DATABASE_URL=postgres://…)")
    bouncer = PgBouncer(db)
    bouncer.start()
    url = f"postgres://{db['USER']}@127.0.0.1:{bouncer.port}/{db['NAME']}"
    local_stack.env.update(
        DATABASE_URL=url, CONN_MAX_AGE="0", DISABLE_SERVER_SIDE_CURSORS="True", MEDIA_ROOT=str(tmp_path / "media")
    )
    owner, member = UserFactory(username="pgb-owner"), UserFactory(username="pgb-member")
    project = ProjectFactory(owner=owner)
    MembershipFactory(project=project, user=member)
    Task.objects.bulk_create(
        [Task(project=project, created_by=owner, title=f"t{i}", due_at=timezone.now()) for i in range(2000)]
    )
    token = api_token_create(user=owner, name="faults")[1]
    assigned = TaskFactory(project=project, created_by=owner)
    template = make_template(
        type("C", (), {"project": project, "owner": owner})(),
        dtstart=timezone.now() + timedelta(minutes=5),
        lead_time=timedelta(hours=1),
    )
    try:
        local_stack.web()
        local_stack.worker("worker", concurrency=4)
        with local_stack.client(token) as client:
            job = client.post(
                "/api/v1/exports/", json={"project": project.pk, "format": "csv", "fields": ["id", "title"]}
            )
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]
            task_assign(task=assigned, actor=owner, assignee=member)  # an email claim through the bouncer
            assert publish_now_rollback_unsafe("recurring.process_recurring_tasks")  # FOR UPDATE SKIP LOCKED
            state = wait_until(
                lambda: (
                    (s := client.get(f"/api/v1/exports/{job_id}/").json())["status"] in ("succeeded", "failed") and s
                ),
                "the export",
                timeout=120,
                step=0.5,
            )
            assert state["status"] == "succeeded", state
            # Through transaction pooling the count and the rows are two snapshots: the recurring instance created
            # meanwhile (process_recurring_tasks above) may land in neither, in the rows only, or in both.
            assert 2001 <= state["total"] <= state["row_count"] <= 2002, state
            body = client.get(f"/api/v1/exports/{job_id}/download/").content.decode()
            assert len(body.strip().splitlines()) == state["row_count"] + 1  # the header and the rows counted
        wait_until(
            lambda: Task.objects.filter(recurring_template=template).exists(), "the instance", timeout=60, step=0.5
        )
        wait_until(
            lambda: Notification.objects.filter(recipient=member, email_state=EmailState.SENT).exists(),
            "the email",
            timeout=60,
            step=0.5,
        )
        log = local_stack.log("worker")
        assert "does not exist" not in log and "prepared statement" not in log, log[-2000:]
    finally:
        local_stack.stop_all()
        bouncer.stop()
    print("\nFAULT pgbouncer (transaction pooling, pool size 4): export of 2,001 rows, email, recurring claim: ok")
