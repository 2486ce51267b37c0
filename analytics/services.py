"""Writes: analytics snapshots, export jobs (create, run, clean up) and the periodic precompute."""

import contextlib
import logging
import math
import os
import tempfile
from datetime import UTC, timedelta

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from analytics import conf, metrics
from analytics.exports import (
    DEFAULT_FIELDS,
    ESCAPE_FORMULAS,
    EXPORT_FIELDS,
    WRITERS,
    copy_csv,
    export_columns,
    row_batches,
)
from analytics.models import AnalyticsSnapshot, ExportFormat, ExportJob, ExportStatus, Scope
from core.enqueue import enqueue_on_commit, publish_now_rollback_unsafe
from core.exceptions import ApplicationError
from tasks_app.models import Project, Task
from tasks_app.selectors import TaskFilter, project_list, task_list

logger = logging.getLogger(__name__)


# --- snapshots -------------------------------------------------------------
def _snapshot_save(*, scope, target, data, computed_at):
    """Upsert the scope's snapshot; an older computation never overwrites a newer one."""
    lookup = {"scope": scope, f"{scope}_id": target}
    if AnalyticsSnapshot.objects.filter(**lookup, computed_at__lte=computed_at).update(
        data=data, computed_at=computed_at
    ):
        return AnalyticsSnapshot.objects.get(**lookup)
    try:
        with transaction.atomic():
            return AnalyticsSnapshot.objects.create(**lookup, data=data, computed_at=computed_at)
    except IntegrityError:  # a concurrent or newer computation got there first
        return AnalyticsSnapshot.objects.get(**lookup)


def analytics_user_refresh(*, user_id, now=None):
    now = now or timezone.now()
    return _snapshot_save(
        scope=Scope.USER, target=user_id, data=metrics.user_metrics(user_id=user_id, now=now), computed_at=now
    )


def analytics_project_refresh(*, project_id, now=None):
    now = now or timezone.now()
    return _snapshot_save(
        scope=Scope.PROJECT,
        target=project_id,
        data=metrics.project_metrics(project_id=project_id, now=now),
        computed_at=now,
    )


def _fresh(snapshot, now):
    return snapshot is not None and snapshot.computed_at >= now - conf.ANALYTICS_SNAPSHOT_MAX_AGE


def analytics_user_current(*, user):
    """The user's snapshot, computed now if missing or older than ANALYTICS_SNAPSHOT_MAX_AGE."""
    now = timezone.now()
    snapshot = AnalyticsSnapshot.objects.filter(scope=Scope.USER, user=user).first()
    return snapshot if _fresh(snapshot, now) else analytics_user_refresh(user_id=user.pk, now=now)


def analytics_project_current(*, project):
    """The project's snapshot (the caller has checked visibility), computed now if missing or stale."""
    now = timezone.now()
    snapshot = AnalyticsSnapshot.objects.filter(scope=Scope.PROJECT, project=project).first()
    return snapshot if _fresh(snapshot, now) else analytics_project_refresh(project_id=project.pk, now=now)


def _keyset_ids(qs, field, batch):
    last = None
    while True:
        page = qs.filter(**({f"{field}__gt": last} if last is not None else {})).order_by(field)[:batch]
        ids = list(page)
        if not ids:
            return
        yield ids
        last = ids[-1]


def analytics_precompute(*, now=None):
    """Queue a refresh for every active user and project, in batches; then remove expired export files.

    Active: a task assigned to the user (or in the non-archived project) was created or changed in the
    last ANALYTICS_ACTIVE_DAYS days (updated_at is set on creation and on every change).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=conf.ANALYTICS_ACTIVE_DAYS)
    batch = conf.ANALYTICS_PRECOMPUTE_BATCH
    users = (
        Task.objects.filter(assignee__isnull=False, updated_at__gte=cutoff)
        .values_list("assignee_id", flat=True)
        .distinct()
    )
    projects = (
        Project.objects.filter(archived=False, tasks__updated_at__gte=cutoff).values_list("id", flat=True).distinct()
    )
    report = {"users": 0, "projects": 0}
    for key, qs, field, task_name in (
        ("users", users, "assignee_id", "analytics.compute_user_analytics"),
        ("projects", projects, "id", "analytics.compute_project_analytics"),
    ):
        for ids in _keyset_ids(qs, field, batch):
            for pk in ids:
                if not publish_now_rollback_unsafe(task_name, args=[pk]):
                    logger.warning("precompute stopped: broker unavailable; the next run refreshes the rest")
                    report["expired_files_removed"] = export_cleanup_expired(now=now)
                    return report
                report[key] += 1
    report["expired_files_removed"] = export_cleanup_expired(now=now)
    return report


# --- exports ---------------------------------------------------------------
def _normalize_filters(filters):
    """Check filters like the task list endpoint does; return them as plain JSON (status always a list)."""
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise ApplicationError("Invalid filters.", fields={"filters": "Must be an object."})
    errors, clean = {}, {}
    for key, value in filters.items():
        if key not in TaskFilter.base_filters:
            errors[f"filters.{key}"] = f"Unknown filter. Allowed: {', '.join(sorted(TaskFilter.base_filters))}."
        elif key == "status":
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                errors["filters.status"] = "Must be a status or a list of statuses."
            else:
                clean[key] = values
        elif key in ("priority", "label"):  # repeatable, like ?label=1&label=2
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
                errors[f"filters.{key}"] = "Must be a value or a list of values."
            else:
                clean[key] = [str(v) for v in values]
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            clean[key] = str(value)
        else:
            errors[f"filters.{key}"] = "Must be a string or a number."
    if not errors:
        form = TaskFilter(clean, queryset=Task.objects.none()).form
        if not form.is_valid():
            errors = {f"filters.{k}": v for k, v in form.errors.items()}
        else:
            errors = _store_filters_safely(clean, form.cleaned_data)
    if errors:
        raise ApplicationError("Invalid filters.", fields=errors)
    return clean


def _store_filters_safely(clean, cleaned):
    """What the worker will replay must not crash the query (found by the security suite's fuzzer): ids stay
    within 64 bits, and datetimes are stored in UTC, since PostgreSQL rejects UTC offsets of 16 h or more."""
    errors = {}
    for key in ("project", "assignee"):
        if cleaned.get(key) is not None and not 0 < cleaned[key] < 2**63:
            errors[f"filters.{key}"] = "Not a valid id."
    for key in ("due_before", "due_after"):
        if cleaned.get(key) is not None:
            try:
                clean[key] = cleaned[key].astimezone(UTC).isoformat()
            except OverflowError:
                errors[f"filters.{key}"] = "Out of range."
    return errors


def _normalize_fields(fields):
    if fields is None:
        return list(DEFAULT_FIELDS)
    if not isinstance(fields, list) or not fields:
        raise ApplicationError("Invalid fields.", fields={"fields": "Must be a non-empty list of field names."})
    unknown = [f for f in fields if f not in EXPORT_FIELDS]
    if unknown:
        raise ApplicationError("Invalid fields.", fields={"fields": f"Unknown: {', '.join(map(str, unknown))}."})
    if len(set(fields)) != len(fields):
        raise ApplicationError("Invalid fields.", fields={"fields": "Each field may appear once."})
    return list(fields)


def export_create(*, requester, format, project_id=None, filters=None, fields=None):
    """Create a pending export job and queue it. Returns the job.

    Retries are made safe by the API's Idempotency-Key (core/idempotency.py), as for every POST.
    """
    if format not in ExportFormat.values:
        raise ApplicationError(
            "Invalid format.", fields={"format": f"Must be one of: {', '.join(ExportFormat.values)}."}
        )
    if project_id is not None and not project_list(user=requester).filter(pk=project_id).exists():
        raise ApplicationError("Invalid project.", fields={"project": "Project not found."}, code="does_not_exist")
    with transaction.atomic():
        job = ExportJob.objects.create(
            requester=requester,
            expires_at=timezone.now() + conf.ANALYTICS_EXPORT_TTL,
            format=format,
            project_id=project_id,
            filters=_normalize_filters(filters),
            fields=_normalize_fields(fields),
        )
        enqueue_on_commit("analytics.export_tasks_async", args=[job.pk])
    return job


def _export_rows(job):
    filters = dict(job.filters or {})
    qs = task_list(user=job.requester, filters=filters or None)
    if job.project_id is not None:
        qs = qs.filter(project_id=job.project_id)
    return qs.order_by("id")


@contextlib.contextmanager
def _export_session():
    """PostgreSQL plans a cursor for its first 10 % of rows and sorts in 4 MB; an export reads every row
    in id order, so plan for all of them and sort in memory. Progress writes need not wait for the WAL
    flush (the final status write, after this block, does). Session-level and reset after, as the
    connection is reused."""
    if connection.vendor != "postgresql":
        yield
        return
    settings = {"cursor_tuple_fraction": "1.0", "work_mem": "'64MB'", "synchronous_commit": "off"}
    with connection.cursor() as cur:
        for name, value in settings.items():
            cur.execute(f"SET {name} = {value}")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            for name in settings:
                cur.execute(f"RESET {name}")


def export_run(*, job_id):
    """Write the job's file. Idempotent: only a pending job (or a running one past the time limit) runs."""
    now = timezone.now()
    stale = now - timedelta(seconds=conf.ANALYTICS_EXPORT_TIME_LIMIT)
    claimed = (
        ExportJob.objects.filter(pk=job_id)
        .filter(Q(status=ExportStatus.PENDING) | Q(status=ExportStatus.RUNNING, started_at__lt=stale))
        .update(status=ExportStatus.RUNNING, started_at=now, progress=0, row_count=0, error="")
    )
    if not claimed:
        return {"job": job_id, "ran": False}
    job = ExportJob.objects.select_related("requester").get(pk=job_id)
    fd, path = tempfile.mkstemp(prefix=f"export-{job.pk}-", suffix=f".{job.format}", dir=conf.ANALYTICS_EXPORT_TMP_DIR)
    os.close(fd)
    try:
        qs = _export_rows(job)
        total = qs.count()
        ExportJob.objects.filter(pk=job.pk).update(total=total)

        # At most every few hundred rows, and at most ~50 progress writes per export.
        every = max(conf.ANALYTICS_EXPORT_PROGRESS_EVERY, math.ceil(total / 50))
        reported = [0]

        def on_progress(written):
            if written - reported[0] >= every:
                reported[0] = written
                ExportJob.objects.filter(pk=job.pk).update(
                    row_count=written, progress=min(99, written * 100 // total) if total else 0
                )

        columns = export_columns(job.fields, escape_formulas=ESCAPE_FORMULAS[job.format])
        rows = qs.annotate(**columns).values_list(*columns)
        with _export_session():
            if job.format == "csv" and connection.vendor == "postgresql" and conf.ANALYTICS_EXPORT_CSV_COPY:
                written = copy_csv(path, fields=job.fields, queryset=rows)
            else:
                written = WRITERS[job.format](
                    path,
                    fields=job.fields,
                    batches=row_batches(rows, size=conf.ANALYTICS_EXPORT_CHUNK_SIZE, ints_as_text=job.format == "csv"),
                    on_progress=on_progress,
                    progress_every=conf.ANALYTICS_EXPORT_PROGRESS_EVERY,
                )
        with open(path, "rb") as fh:
            job.file.save(f"tasks-export-{job.pk}.{job.format}", File(fh), save=False)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.SUCCEEDED,
            file=job.file.name,
            progress=100,
            row_count=written,
            finished_at=timezone.now(),
        )
        return {"job": job.pk, "ran": True, "status": ExportStatus.SUCCEEDED, "rows": written}
    except (OperationalError, InterfaceError):
        # Transient (a database restart or failover): hand the job back and let the task retry it
        # (core.celery_base.BaseTask). If the database cannot take even this write, the job stays
        # RUNNING and is claimed again once past the time limit.
        with contextlib.suppress(OperationalError, InterfaceError):
            ExportJob.objects.filter(pk=job.pk, status=ExportStatus.RUNNING).update(
                status=ExportStatus.PENDING, started_at=None
            )
        raise
    except Exception as exc:
        error = "; ".join(exc.messages) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
        logger.warning("export %s failed: %s", job.pk, type(exc).__name__)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        return {"job": job.pk, "ran": True, "status": ExportStatus.FAILED}
    finally:
        if os.path.exists(path):
            os.unlink(path)


def export_cleanup_expired(*, now=None, batch=500):
    """Delete the files of expired exports (the rows stay, so their download answers 410). Returns the count."""
    now = now or timezone.now()
    removed = 0
    while True:
        jobs = list(ExportJob.objects.filter(expires_at__lt=now).exclude(file="").only("id", "file")[:batch])
        if not jobs:
            return removed
        for job in jobs:
            job.file.storage.delete(job.file.name)
        ExportJob.objects.filter(pk__in=[j.pk for j in jobs]).update(file="")
        removed += len(jobs)
