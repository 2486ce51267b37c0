"""Flows for scripts/test_async_integration.py: an export and a project snapshot made by the running worker."""

import csv
import io
import os
import uuid

from core.itest import flow, wait_for


def _fixture(suffix):
    from django.contrib.auth import get_user_model

    from tasks_app.services.projects import project_create
    from tasks_app.services.tasks import task_create

    owner = get_user_model().objects.create_user(f"itest-analytics-owner-{suffix}")
    project = project_create(actor=owner, name=f"itest-analytics-{suffix}")
    for title in ("=formula", "plain"):
        task_create(actor=owner, project=project, title=title)
    return owner, project


@flow
def export_csv(timeout):
    from analytics import services
    from analytics.models import ExportJob

    owner, project = _fixture(uuid.uuid4().hex[:8])
    try:
        job = services.export_create(requester=owner, format="csv", project_id=project.pk, fields=["id", "title"])
        job = wait_for(
            lambda: ExportJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).first(),
            timeout,
            "the export to finish",
        )
        assert job.status == "succeeded", job.error
        with job.file.open("rb") as fh:
            rows = list(csv.reader(io.StringIO(fh.read().decode("utf-8"), newline="")))
        assert [r[1] for r in rows] == ["title", "'=formula", "plain"], rows
        return f"export {job.pk}: {job.row_count} rows, progress {job.progress}, formula escaped"
    finally:
        if not os.environ.get("ITEST_KEEP"):
            ExportJob.objects.filter(requester=owner).first().file.delete(save=False)
            project.delete()
            owner.delete()


@flow
def project_snapshot(timeout):
    from analytics.models import AnalyticsSnapshot
    from taskmgmt.celery import app

    owner, project = _fixture(uuid.uuid4().hex[:8])
    try:
        result = app.send_task("analytics.compute_project_analytics", args=[project.pk]).get(timeout=timeout)
        assert result["computed"], result
        snapshot = AnalyticsSnapshot.objects.get(project=project)
        assert snapshot.data["created"] == 2 and snapshot.data["open"] == 2, snapshot.data
        return f"snapshot {snapshot.pk} computed at {snapshot.computed_at:%H:%M:%S} (2 open tasks)"
    finally:
        if not os.environ.get("ITEST_KEEP"):
            project.delete()
            owner.delete()
