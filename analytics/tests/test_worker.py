"""End to end through a real Celery worker over Redis (queue `analytics`)."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from analytics.models import AnalyticsSnapshot, ExportJob
from analytics.tests.conftest import bulk_tasks, read_csv, read_xlsx
from analytics.tests.factories import ExportJobFactory
from tasks_app.models import Membership, Role, Status, Task
from tasks_app.tests.factories import ProjectFactory, TaskFactory, UserFactory
from tests.support import wait_until

pytestmark = pytest.mark.worker


def test_precompute_refreshes_active_scopes_and_the_api_serves_them(start_celery_worker, celery_app, api, media):
    owner, active, idle = (UserFactory(username=f"w-{name}") for name in ("owner", "active", "idle"))
    project = ProjectFactory(owner=owner)
    archived = ProjectFactory(owner=owner, archived=True)
    for user in (active, idle):
        Membership.objects.create(project=project, user=user, role=Role.MEMBER)
    TaskFactory(project=project, assignee=active, status=Status.DONE, completed_at=timezone.now())
    old = TaskFactory(project=project, assignee=idle)
    Task.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=31))
    TaskFactory(project=archived)
    expired = ExportJobFactory(requester=owner, expires_at=timezone.now() - timedelta(hours=1))
    expired.file.save("old.csv", ContentFile(b"id\n"))

    with start_celery_worker(queues=["analytics"]):
        report = celery_app.send_task("analytics.precompute_analytics").get(timeout=20)
        assert report == {"users": 1, "projects": 1, "expired_files_removed": 1}
        snap = wait_until(lambda: AnalyticsSnapshot.objects.filter(project=project).first(), what="project snapshot")
        wait_until(lambda: AnalyticsSnapshot.objects.filter(user=active).exists(), what="user snapshot")

    assert not AnalyticsSnapshot.objects.filter(user=idle).exists()
    assert not AnalyticsSnapshot.objects.filter(project=archived).exists()
    assert not default_storage.exists(expired.file.name)
    body = api(active).get(f"/api/v1/analytics/projects/{project.pk}/").json()
    assert body["computed_at"] == snap.computed_at.isoformat().replace("+00:00", "Z")
    assert body["metrics"]["created"] == 2 and body["metrics"]["completed"] == 1
    assert api(active).get("/api/v1/analytics/me/").json()["metrics"]["completed"] == 1


def test_export_round_trip_with_progress_and_idempotency(start_celery_worker, api, media, settings):
    settings.ANALYTICS_EXPORT_PROGRESS_EVERY = 100
    owner, outsider = UserFactory(username="x-owner"), UserFactory(username="x-out")
    project = ProjectFactory(owner=owner)
    bulk_tasks(project, 1500, status=Status.TODO, due_at=timezone.now())
    TaskFactory(project=project, title="=cmd|' /C calc'!A0", assignee=owner)
    TaskFactory(project=ProjectFactory(owner=outsider), title="not visible to owner")
    client = api(owner)
    fields = ["id", "title", "status", "priority", "assignee", "due_at", "created_at"]
    body = {"project": project.pk, "fields": fields}

    with start_celery_worker(queues=["analytics"]):
        jobs, seen, answers = {}, {}, {}
        for fmt in ("csv", "xlsx"):
            first = client.post("/api/v1/exports/", {**body, "format": fmt}, format="json", HTTP_IDEMPOTENCY_KEY=fmt)
            assert first.status_code == 202 and first.json()["progress"] == 0
            jobs[fmt] = first.json()["id"]
            answers[fmt] = first.content
            seen[fmt] = [first.json()["progress"]]

        def finished():
            for fmt, pk in jobs.items():
                state = client.get(f"/api/v1/exports/{pk}/").json()
                seen[fmt].append(state["progress"])
                assert state["status"] != "failed", state["error"]
            return all(ExportJob.objects.get(pk=pk).status == "succeeded" for pk in jobs.values())

        wait_until(finished, what="both exports")
        repeat = client.post("/api/v1/exports/", {**body, "format": "csv"}, format="json", HTTP_IDEMPOTENCY_KEY="csv")
        # A retry is answered with the first answer (core.idempotency), byte for byte; no second job.
        assert (
            repeat.status_code == 202 and repeat.content == answers["csv"] and repeat["Idempotent-Replayed"] == "true"
        )
        assert ExportJob.objects.filter(requester=owner).count() == 2

    tables = {}
    for fmt, pk in jobs.items():
        state = client.get(f"/api/v1/exports/{pk}/").json()
        assert (state["progress"], state["row_count"], state["total"]) == (100, 1501, 1501)
        progress = seen[fmt] + [state["progress"]]
        assert progress[0] == 0 and progress[-1] == 100 and progress == sorted(progress), progress
        r = client.get(state["download_url"].replace("http://testserver", ""))
        assert r.status_code == 200
        tables[fmt] = (read_csv if fmt == "csv" else read_xlsx)(b"".join(r.streaming_content))
        assert api(outsider).get(f"/api/v1/exports/{pk}/download/").status_code == 404

    # The same rows, except the formula escape: CSV has a leading ', XLSX a typed text cell without it.
    assert tables["csv"][:-1] == tables["xlsx"][:-1]
    assert tables["xlsx"][-1][1] == "=cmd|' /C calc'!A0" and tables["csv"][-1][2:] == tables["xlsx"][-1][2:]
    assert tables["csv"][0] == fields and len(tables["csv"]) == 1502
    expected_ids = [str(pk) for pk in Task.objects.filter(project=project).order_by("id").values_list("id", flat=True)]
    assert [row[0] for row in tables["csv"][1:]] == expected_ids
    assert tables["csv"][-1][1:5] == ["'=cmd|' /C calc'!A0", "todo", "2", "x-owner"]
    assert all(row[5].endswith("+00:00") and "T" in row[5] for row in tables["csv"][1:-1])
