"""Exports: validation, idempotency, permissions, expiry, file content, progress, failure (no worker)."""

import io
import os
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from analytics import services
from analytics.models import ExportJob, ExportStatus
from analytics.tests.conftest import bulk_tasks, read_csv, read_xlsx
from analytics.tests.factories import ExportJobFactory
from tasks_app.models import Status, Task
from tasks_app.tests.factories import ProjectFactory, TaskFactory
from tests.support.api import api_error_fields, api_errors


def post(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/exports/", body, format="json", **headers)


class TestCreateValidation:
    @pytest.mark.parametrize(
        "body, field",
        [
            ({"format": "pdf"}, "format"),
            ({}, "format"),
            ({"format": "csv", "fields": ["title", "password"]}, "fields"),
            ({"format": "csv", "fields": []}, "fields"),
            ({"format": "csv", "fields": ["title", "title"]}, "fields"),
            ({"format": "csv", "filters": {"due_before": "not-a-date"}}, "filters.due_before"),
            ({"format": "csv", "filters": {"status": ["bogus"]}}, "filters.status"),
            ({"format": "csv", "filters": {"owner": "1"}}, "filters.owner"),
            ({"format": "csv", "filters": {"assignee": {"x": 1}}}, "filters.assignee"),
            ({"format": "csv", "filters": "status=done"}, "filters"),
            # Found by the security suite: these passed validation, then crashed the worker's query.
            ({"format": "csv", "filters": {"project": "3356614784361393815552"}}, "filters.project"),
            ({"format": "csv", "filters": {"assignee": "-1"}}, "filters.assignee"),
            ({"format": "csv", "filters": {"due_after": "9999-12-31T23:00:00-20:00"}}, "filters.due_after"),
            # A naive datetime is ambiguous: refused like in request bodies (it used to be read as UTC).
            ({"format": "csv", "filters": {"due_after": "2026-05-01T09:00:00"}}, "filters.due_after"),
            ({"format": "csv", "project": "abc"}, "project"),
        ],
    )
    def test_bad_input_is_400_on_the_field(self, cast, api, body, field):
        r = post(api(cast.member), body)
        assert r.status_code == 400, r.content
        assert field in api_errors(r) or field in api_error_fields(r)
        assert not ExportJob.objects.exists()

    def test_project_the_requester_cannot_see_is_400(self, cast, api):
        r = post(api(cast.outsider), {"format": "csv", "project": cast.project.pk})
        assert r.status_code == 400 and "project" in api_errors(r)
        assert not ExportJob.objects.exists()

    def test_accepted_job_is_pending_with_defaults(self, cast, api):
        r = post(api(cast.viewer), {"format": "xlsx", "project": cast.project.pk, "filters": {"status": "done"}})
        assert r.status_code == 202
        body = r.json()
        assert (body["status"], body["progress"], body["download_url"]) == ("pending", 0, None)
        job = ExportJob.objects.get(pk=body["id"])
        assert job.filters == {"status": ["done"]} and job.fields[:3] == ["id", "project", "title"]
        assert timedelta(days=6, hours=23) < job.expires_at - job.created_at <= timedelta(days=7)


class TestIdempotency:
    def test_same_key_returns_the_same_job(self, cast, api):
        client = api(cast.member)
        first = post(client, {"format": "csv"}, key="abc-1")
        again = post(client, {"format": "csv"}, key="abc-1")
        assert first.status_code == again.status_code == 202
        assert first.json()["id"] == again.json()["id"]
        assert ExportJob.objects.count() == 1

    def test_key_is_per_requester(self, cast, api):
        a = post(api(cast.member), {"format": "csv"}, key="k")
        b = post(api(cast.owner), {"format": "csv"}, key="k")
        assert a.json()["id"] != b.json()["id"]

    def test_same_key_other_parameters_is_422(self, cast, api):
        client = api(cast.member)
        post(client, {"format": "csv"}, key="k2")
        r = post(client, {"format": "xlsx"}, key="k2")
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "idempotency_key_reused"
        assert "idempotency_key" in api_errors(r)
        assert ExportJob.objects.count() == 1

    def test_without_key_each_post_is_a_new_job(self, cast, api):
        client = api(cast.member)
        assert post(client, {"format": "csv"}).json()["id"] != post(client, {"format": "csv"}).json()["id"]


class TestPermissionsAndExpiry:
    @pytest.fixture
    def done_job(self, cast, media):
        TaskFactory(project=cast.project, title="x")
        job = ExportJobFactory(requester=cast.member)
        services.export_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == ExportStatus.SUCCEEDED
        return job

    @pytest.mark.parametrize("who", ["owner", "outsider", "staff", "viewer"])
    def test_only_the_requester_sees_or_downloads(self, cast, api, done_job, who):
        client = api(cast.user(who))
        assert client.get(f"/api/v1/exports/{done_job.pk}/").status_code == 404
        assert client.get(f"/api/v1/exports/{done_job.pk}/download/").status_code == 404

    def test_anonymous_is_401(self, api, done_job):
        assert api().get(f"/api/v1/exports/{done_job.pk}/download/").status_code == 401

    def test_requester_downloads_until_expiry_then_410(self, cast, api, done_job):
        client = api(cast.member)
        body = client.get(f"/api/v1/exports/{done_job.pk}/").json()
        assert body["download_url"].endswith(f"/api/v1/exports/{done_job.pk}/download/")
        r = client.get(f"/api/v1/exports/{done_job.pk}/download/")
        assert r.status_code == 200
        assert r["Content-Type"] == "text/csv; charset=utf-8"  # a media type the schema names for this response
        assert read_csv(b"".join(r.streaming_content))[0] == ["id", "title", "status"]
        ExportJob.objects.filter(pk=done_job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert client.get(f"/api/v1/exports/{done_job.pk}/download/").status_code == 410

    def test_unfinished_export_download_is_409(self, cast, api):
        job = ExportJobFactory(requester=cast.member)
        assert api(cast.member).get(f"/api/v1/exports/{job.pk}/download/").status_code == 409

    def test_non_numeric_id_is_404(self, cast, api):
        assert api(cast.member).get("/api/v1/exports/abc/").status_code == 404

    def test_cleanup_removes_only_expired_files(self, cast, api, done_job, media):
        fresh = ExportJobFactory(requester=cast.member)
        fresh.file.save("fresh.csv", ContentFile(b"id\n"))
        ExportJob.objects.filter(pk=done_job.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        assert default_storage.exists(done_job.file.name)
        assert services.export_cleanup_expired() == 1
        assert not default_storage.exists(done_job.file.name)
        assert default_storage.exists(fresh.file.name)
        done_job.refresh_from_db()
        assert not done_job.file
        assert api(cast.member).get(f"/api/v1/exports/{done_job.pk}/download/").status_code == 410
        assert services.export_cleanup_expired() == 0


class TestRun:
    def test_csv_and_xlsx_hold_the_same_rows_only_visible_tasks(self, cast, media):
        due = datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
        TaskFactory(project=cast.project, title="Plan", assignee=cast.member, due_at=due, priority=3)
        TaskFactory(project=cast.project, title="Ship", status=Status.DONE, completed_at=due)
        TaskFactory(project=ProjectFactory(), title="Hidden from member")
        fields = ["id", "title", "status", "priority", "assignee", "due_at", "completed_at"]
        tables = {}
        for fmt in ("csv", "xlsx"):
            job = ExportJobFactory(requester=cast.member, format=fmt, fields=fields)
            assert services.export_run(job_id=job.pk)["status"] == "succeeded"
            job.refresh_from_db()
            assert (job.row_count, job.total, job.progress) == (2, 2, 100)
            with job.file.open("rb") as fh:
                tables[fmt] = (read_csv if fmt == "csv" else read_xlsx)(fh.read())
        assert tables["csv"] == tables["xlsx"]
        assert tables["csv"][0] == fields
        plan = Task.objects.get(title="Plan")
        assert tables["csv"][1] == [str(plan.pk), "Plan", "todo", "3", "member", "2026-05-01T07:30:00+00:00", ""]
        assert tables["csv"][2][1:3] == ["Ship", "done"] and tables["csv"][2][6] == "2026-05-01T07:30:00+00:00"

    def test_far_utc_offset_is_stored_in_utc_and_the_export_runs(self, cast, api, media):
        # PostgreSQL rejects a +-16 h offset that Python accepts; the job replays the filter as UTC.
        TaskFactory(project=cast.project, title="late", due_at=timezone.now() + timedelta(days=2))
        r = post(
            api(cast.member),
            {"format": "csv", "fields": ["title"], "filters": {"due_before": "2099-01-01T00:00:00-20:30"}},
        )
        assert r.status_code == 202, r.content
        job = ExportJob.objects.get()
        assert job.filters == {"due_before": "2099-01-01T20:30:00+00:00"}
        assert services.export_run(job_id=job.pk)["status"] == "succeeded"
        job.refresh_from_db()
        with job.file.open("rb") as fh:
            assert read_csv(fh.read()) == [["title"], ["late"]]

    def test_filters_and_project_apply(self, cast, media):
        TaskFactory(project=cast.project, title="a", status=Status.DONE)
        TaskFactory(project=cast.project, title="b", status=Status.TODO)
        other = ProjectFactory(owner=cast.member)
        TaskFactory(project=other, title="c", status=Status.DONE)
        job = ExportJobFactory(
            requester=cast.member, project=cast.project, filters={"status": ["done"]}, fields=["title"]
        )
        services.export_run(job_id=job.pk)
        job.refresh_from_db()
        with job.file.open("rb") as fh:
            assert read_csv(fh.read()) == [["title"], ["a"]]

    def test_csv_formulas_are_escaped(self, cast, media):
        titles = ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tTab", "\rCR", "plain", " =spaced", "a=b"]
        for title in titles:
            TaskFactory(project=cast.project, title=title, description='=HYPERLINK("http://x")')
        job = ExportJobFactory(requester=cast.member, format="csv", fields=["title", "description"])
        services.export_run(job_id=job.pk)
        job.refresh_from_db()
        with job.file.open("rb") as fh:
            rows = read_csv(fh.read())[1:]
        assert [r[0] for r in rows] == [
            "'=1+1",
            "'+SUM(A1)",
            "'-2",
            "'@cmd",
            "'\tTab",
            "'\rCR",
            "plain",
            " =spaced",
            "a=b",
        ]
        assert {r[1] for r in rows} == {'\'=HYPERLINK("http://x")'}

    def test_xlsx_formulas_are_typed_text_cells_without_apostrophe(self, cast, media):
        """XLSX has cell types: formula-like text is a string cell (t="s", quotePrefix), not a formula and
        not a literal leading apostrophe (the CSV escape is for CSV only)."""
        from openpyxl import load_workbook

        titles = ["=1+1", "+SUM(A1)", "-2", "@cmd", "plain", "a=b"]
        for title in titles:
            TaskFactory(project=cast.project, title=title, description='=HYPERLINK("http://x")')
        job = ExportJobFactory(requester=cast.member, format="xlsx", fields=["title", "description"])
        services.export_run(job_id=job.pk)
        job.refresh_from_db()
        with job.file.open("rb") as fh:
            data = fh.read()
        rows = read_xlsx(data)[1:]
        assert sorted(r[0] for r in rows) == sorted(titles)
        assert {r[1] for r in rows} == {'=HYPERLINK("http://x")'}
        sheet = load_workbook(io.BytesIO(data))["tasks"]
        cells = [c for row in sheet.iter_rows(min_row=2) for c in row]
        assert {c.data_type for c in cells} == {"s"}
        assert all(c.quotePrefix for c in cells if c.value.startswith(("=", "+", "-", "@")))

    def test_xlsx_drops_control_characters_instead_of_failing(self, cast, media):
        TaskFactory(project=cast.project, title="bell\x07here")
        job = ExportJobFactory(requester=cast.member, format="xlsx", fields=["title"])
        assert services.export_run(job_id=job.pk)["status"] == "succeeded"
        with ExportJob.objects.get(pk=job.pk).file.open("rb") as fh:
            assert read_xlsx(fh.read())[1] == ["bellhere"]

    def test_progress_moves_from_0_to_100_every_few_hundred_rows(self, cast, media, settings):
        settings.ANALYTICS_EXPORT_PROGRESS_EVERY = 100
        settings.ANALYTICS_EXPORT_CHUNK_SIZE = 250
        bulk_tasks(cast.project, 1200)
        job = ExportJobFactory(requester=cast.member)
        seen = []

        def record(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            if sql.startswith('UPDATE "analytics_exportjob"'):
                seen.append(ExportJob.objects.values_list("progress", flat=True).get(pk=job.pk))
            return result

        with connection.execute_wrapper(record):
            services.export_run(job_id=job.pk)
        # claim, total, one write per 100 rows (capped at 99 until the file is stored), done
        assert seen == [0, 0, 8, 16, 25, 33, 41, 50, 58, 66, 75, 83, 91, 99, 100]
        assert ExportJob.objects.get(pk=job.pk).row_count == 1200

    def test_progress_writes_are_bounded_for_large_exports(self, cast, media, settings):
        settings.ANALYTICS_EXPORT_PROGRESS_EVERY = 10
        bulk_tasks(cast.project, 1200)
        job = ExportJobFactory(requester=cast.member)
        updates = []

        def record(execute, sql, params, many, context):
            if sql.startswith('UPDATE "analytics_exportjob"'):
                updates.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            services.export_run(job_id=job.pk)
        # claim + total + done + progress at most every max(10, 1200 / 50 = 24) rows: 1200 // 30 = 40 writes
        assert len(updates) == 3 + 40

    def test_a_succeeded_job_is_not_redone(self, cast, media):
        TaskFactory(project=cast.project)
        job = ExportJobFactory(requester=cast.member)
        assert services.export_run(job_id=job.pk)["ran"] is True
        name = ExportJob.objects.get(pk=job.pk).file.name
        assert services.export_run(job_id=job.pk) == {"job": job.pk, "ran": False}
        assert ExportJob.objects.get(pk=job.pk).file.name == name

    def test_running_job_is_left_alone_until_past_the_time_limit(self, cast, media):
        from analytics import conf

        job = ExportJobFactory(requester=cast.member, status=ExportStatus.RUNNING, started_at=timezone.now())
        assert services.export_run(job_id=job.pk)["ran"] is False
        ExportJob.objects.filter(pk=job.pk).update(
            started_at=timezone.now() - timedelta(seconds=conf.ANALYTICS_EXPORT_TIME_LIMIT + 1)
        )
        assert services.export_run(job_id=job.pk)["status"] == "succeeded"

    def test_bad_stored_filters_fail_with_the_error_and_no_file(self, cast, media):
        job = ExportJobFactory(requester=cast.member, filters={"due_before": "garbage"})
        assert services.export_run(job_id=job.pk)["status"] == "failed"
        job.refresh_from_db()
        assert job.status == "failed" and "date" in job.error.lower()
        assert not job.file and os.listdir(media / "tmp") == []

    def test_transient_database_error_is_retried_not_failed(self, cast, media, monkeypatch):
        """An OperationalError (database restart) used to mark the export FAILED for good."""
        from django.db import InterfaceError, OperationalError

        from analytics.tasks import export_tasks_async

        TaskFactory(project=cast.project, title="survives")
        real = services.WRITERS["csv"]
        calls = []

        def flaky(path, **kwargs):
            calls.append(path)
            if len(calls) == 1:
                raise OperationalError("server closed the connection unexpectedly")
            return real(path, **kwargs)

        monkeypatch.setitem(services.WRITERS, "csv", flaky)
        job = ExportJobFactory(requester=cast.member, fields=["title"])
        with pytest.raises(OperationalError):
            services.export_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == ExportStatus.PENDING and not job.error and not job.file
        assert os.listdir(media / "tmp") == []
        # The task retries it (core.celery_base.BaseTask); the retry finds the job pending and runs it.
        assert {OperationalError, InterfaceError} <= set(export_tasks_async.autoretry_for)
        assert services.export_run(job_id=job.pk)["status"] == "succeeded"
        with ExportJob.objects.get(pk=job.pk).file.open("rb") as fh:
            assert read_csv(fh.read()) == [["title"], ["survives"]]

    def test_storage_failure_fails_the_job_and_leaves_no_file(self, cast, media, settings):
        TaskFactory(project=cast.project)
        blocker = media / "not-a-dir"
        blocker.write_text("a file where the media directory should be")
        settings.MEDIA_ROOT = str(blocker)
        job = ExportJobFactory(requester=cast.member)
        assert services.export_run(job_id=job.pk)["status"] == "failed"
        job.refresh_from_db()
        assert job.status == "failed" and job.error and not job.file and job.progress < 100
        assert os.listdir(media / "tmp") == []
        assert blocker.read_text().startswith("a file")


def test_export_list_is_paginated_with_constant_queries(cast, api, django_assert_num_queries):
    for _ in range(3):
        ExportJobFactory(requester=cast.member)
    ExportJobFactory(requester=cast.owner)
    client = api(cast.member)
    with django_assert_num_queries(2):  # count + page
        r = client.get("/api/v1/exports/")
    assert r.json()["count"] == 3
    for _ in range(10):
        ExportJobFactory(requester=cast.member)
    with django_assert_num_queries(2):
        assert client.get("/api/v1/exports/").json()["count"] == 13


def test_pending_exports_are_registered_with_the_sweep(cast):
    from core import outbox

    box = outbox.registered()["analytics.export"]
    assert box.task_name == "analytics.export_tasks_async"
    pending = ExportJobFactory(requester=cast.member)
    ExportJobFactory(requester=cast.member, status=ExportStatus.SUCCEEDED)
    ExportJobFactory(requester=cast.member, status=ExportStatus.RUNNING, started_at=timezone.now())
    assert list(box.queryset().values_list("pk", flat=True)) == [pending.pk]


def test_export_has_parent_labels_and_blockers(cast, settings, tmp_path):
    """The default columns carry the task's parent, its labels (names) and its blockers (ids)."""
    import csv

    from analytics.services import export_create, export_run
    from tasks_app.services.labels import label_create
    from tasks_app.services.relations import relation_add
    from tasks_app.services.tasks import task_create

    settings.MEDIA_ROOT = str(tmp_path)
    parent = task_create(actor=cast.member, project=cast.project, title="parent")
    bug = label_create(project=cast.project, actor=cast.member, name="bug")
    ui = label_create(project=cast.project, actor=cast.member, name="=ui")
    child = task_create(actor=cast.member, project=cast.project, title="child", parent=parent, labels=[bug.pk, ui.pk])
    relation_add(task=parent, actor=cast.member, other=child, type="blocks")
    job = export_create(requester=cast.member, format="csv", project_id=cast.project.pk)
    export_run(job_id=job.pk)
    job.refresh_from_db()
    with open(job.file.path, newline="") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    row = rows[str(child.pk)]
    assert row["parent"] == str(parent.pk) and row["blockers"] == str(parent.pk)
    # Sorted by the database's collation; a cell starting with '=' gets the formula guard.
    assert row["labels"] in ("'=ui, bug", "bug, =ui")
    assert rows[str(parent.pk)]["labels"] == "" and rows[str(parent.pk)]["blockers"] == ""


def test_export_accepts_the_new_list_filters(cast, settings, tmp_path):
    import csv

    from analytics.services import export_create, export_run
    from tasks_app.services.labels import label_create
    from tasks_app.services.tasks import task_create

    settings.MEDIA_ROOT = str(tmp_path)
    bug = label_create(project=cast.project, actor=cast.member, name="bug")
    wanted = task_create(actor=cast.member, project=cast.project, title="wanted", labels=[bug.pk], priority=4)
    task_create(actor=cast.member, project=cast.project, title="other", priority=4)
    job = export_create(
        requester=cast.member, format="csv", filters={"label": [bug.pk], "priority": 4, "overdue": "false"}
    )
    export_run(job_id=job.pk)
    job.refresh_from_db()
    with open(job.file.path, newline="") as fh:
        assert [row["id"] for row in csv.DictReader(fh)] == [str(wanted.pk)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_copy_csv_export_has_the_same_cells_as_the_csv_module(cast, media, settings):
    """ANALYTICS_EXPORT_CSV_COPY: the same rows and cells (formulas escaped, ISO datetimes, only visible
    tasks, filters that make the SELECT DISTINCT), and the exact row count."""
    bulk_tasks(cast.project, 1200)
    TaskFactory(project=cast.project, title="=HYPERLINK(1)", status=Status.DONE)
    TaskFactory(project=ProjectFactory(owner=cast.outsider), title="hidden", status=Status.DONE)
    fields = ["id", "title", "status", "assignee", "due_at", "created_at"]

    def export(copy):
        settings.ANALYTICS_EXPORT_CSV_COPY = copy
        job = ExportJobFactory(requester=cast.member, fields=fields, filters={"status": ["done", "todo"]})
        assert services.export_run(job_id=job.pk)["status"] == "succeeded"
        job.refresh_from_db()
        with job.file.open("rb") as fh:
            return job.row_count, job.progress, read_csv(fh.read())

    with_module, with_copy = export(False), export(True)
    assert with_copy == with_module
    count, progress, rows = with_copy
    assert progress == 100 and count == len(rows) - 1 > 100
    assert ["'=HYPERLINK(1)"] == [r[1] for r in rows if "HYPERLINK" in r[1]]
    assert "hidden" not in {r[1] for r in rows}
