"""Generation of recurring instances: due templates, planning, the batched insert, cleanup.

`recurring_process_due` (run by recurring.process_recurring_tasks) locks due templates batch by
batch (FOR UPDATE SKIP LOCKED), plans each one's occurrences, inserts all instances of the batch in
one statement and saves every template's generation state in one more.
"""

import collections
import logging
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.db import connection, models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from core.exceptions import ApplicationError, NotFound
from tasks_app import conf, signals
from tasks_app.models import CatchUp, RecurrenceMode, RecurringTaskTemplate, Status, Task
from tasks_app.recurring.rules import RecurrenceError, Schedule, to_local_naive, to_utc
from tasks_app.services.events import event_build, event_record_many
from tasks_app.services.positions import positions_assign_at_end
from tasks_app.services.search import search_reindex

logger = logging.getLogger(__name__)

TEMPLATE_TASK_FIELDS = ("title", "description", "priority", "assignee")
OPEN_STATUSES = (Status.TODO, Status.IN_PROGRESS)


def template_schedule(template, *, check_repeats=False):
    """The template's Schedule; a bad rule is an ApplicationError naming the field. `check_repeats` (on
    writes) also refuses a rule that never occurs after dtstart (Schedule.check_repeats)."""
    try:
        schedule = Schedule.for_template(template)
        return schedule.check_repeats() if check_repeats else schedule
    except RecurrenceError as exc:
        raise ApplicationError(exc.message, fields={exc.field: exc.message}, code="invalid_recurrence")


def set_next(template, occurrence):
    template.next_occurrence_at = occurrence
    template.next_run_at = occurrence - template.lead_time if occurrence is not None else None


def has_open_instance(template):
    return template.instances.filter(status__in=OPEN_STATUSES).exists()


def _after_completion_next(template, schedule, completed_at):
    """Todoist's `every!`: FREQ/INTERVAL counted from the completion, at the template's local time."""
    unit, n = schedule.after_completion_interval()
    if unit == "HOURLY":
        nxt = completed_at + timedelta(hours=n)
    else:
        delta = {
            "DAILY": relativedelta(days=n),
            "WEEKLY": relativedelta(weeks=n),
            "MONTHLY": relativedelta(months=n),
            "YEARLY": relativedelta(years=n),
        }[unit]
        day = (to_local_naive(completed_at, schedule.zone) + delta).date()
        wall = to_local_naive(template.dtstart, schedule.zone).time().replace(microsecond=0)
        nxt = to_utc(datetime.combine(day, wall), schedule.zone)
    if schedule.count and template.instances_created >= schedule.count:
        return None
    if schedule.until and to_local_naive(nxt, schedule.zone) > schedule.until:
        return None
    return nxt


def recurring_instance_closed(*, task):
    """after_completion mode: the next occurrence counts from this instance's completion."""
    template = (
        RecurringTaskTemplate.objects.select_for_update()
        .filter(pk=task.recurring_template_id, mode=RecurrenceMode.AFTER_COMPLETION, enabled=True)
        .first()
    )
    if template is None or template.next_occurrence_at is not None or has_open_instance(template):
        return
    schedule = Schedule.for_template(template)
    set_next(template, _after_completion_next(template, schedule, task.completed_at or timezone.now()))
    template.save(update_fields=["next_occurrence_at", "next_run_at", "updated_at"])


def _instance_row(template, occurrence, stamp):
    return Task(
        project_id=template.project_id,
        title=template.title,
        description=template.description,
        priority=template.priority,
        assignee_id=template.assignee_id,
        created_by_id=template.created_by_id,
        status=Status.TODO,
        due_at=occurrence,
        occurrence_at=occurrence,
        recurring_template_id=template.pk,
        created_at=stamp,
    )


def record_instances_created(tasks):
    """One task.created event per new instance, in one INSERT (actor: none, the engine made them)."""
    event_record_many(
        [
            event_build(
                type="task.created",
                project_id=task.project_id,
                task_id=task.pk,
                data={"title": task.title, "status": task.status, "recurring_template": task.recurring_template_id},
            )
            for task in tasks
        ]
    )
    search_reindex(task_ids=[task.pk for task in tasks])


@transaction.atomic
def recurring_instance_create(*, template_id, occurrence_at, now=None):
    """Create the instance of one occurrence. Idempotent: returns (task, created)."""
    template = (
        RecurringTaskTemplate.objects.select_for_update().select_related("project").filter(pk=template_id).first()
    )
    if template is None:
        raise NotFound("Recurring task not found.", code="not_found")
    schedule = template_schedule(template)
    if template.mode == RecurrenceMode.SCHEDULE and not schedule.is_occurrence(occurrence_at):
        raise ApplicationError(
            "Not an occurrence of this rule.", fields={"occurrence_at": "This time is not an occurrence of the rule."}
        )
    existing = Task.objects.filter(recurring_template=template, occurrence_at=occurrence_at).first()
    if existing is not None:
        return existing, False
    now = now or timezone.now()
    task = _instance_row(template, occurrence_at, now)
    positions_assign_at_end([task])
    task.save(force_insert=True)
    task.recurring_template = template
    record_instances_created([task])
    signals.recurring_instances_created.send(sender=Task, instances=[task])
    template.instances_created += 1
    template.last_generated_at = now
    if template.last_occurrence_at is None or occurrence_at > template.last_occurrence_at:
        template.last_occurrence_at = occurrence_at
    if template.mode == RecurrenceMode.AFTER_COMPLETION:
        set_next(template, None)
    elif template.next_occurrence_at is not None and occurrence_at >= template.next_occurrence_at:
        set_next(template, schedule.next_after(occurrence_at))
    template.save()
    return task, True


def recurring_due_templates(*, now=None):
    """Templates whose next instance is due (the check process_recurring_tasks runs)."""
    now = now or timezone.now()
    return RecurringTaskTemplate.objects.filter(enabled=True, next_run_at__lte=now, project__archived=False)


def _plan(template, now, cap):
    """(occurrences to create, next occurrence, skipped count) for one due template."""
    schedule = Schedule.for_template(template)
    if template.mode == RecurrenceMode.AFTER_COMPLETION:
        return [template.next_occurrence_at], None, 0
    missed = collections.deque(maxlen=1 if template.catch_up == CatchUp.LATEST else cap)
    upcoming, seen, nxt = [], 0, None
    for occurrence in schedule.iter_from(template.next_occurrence_at, inclusive=True):
        if occurrence - template.lead_time > now:
            nxt = occurrence
            break
        seen += 1
        (missed if occurrence < now else upcoming).append(occurrence)
    due = (list(missed) + upcoming)[-cap:]
    return due, nxt, seen - len(due)


_INSERT_VARYING = (
    "project_id",
    "title",
    "description",
    "priority",
    "assignee_id",
    "created_by_id",
    "recurring_template_id",
    "occurrence_at",
    "position",
)


def _insert_instances(rows, *, stamp):
    """Insert instance rows, skipping (template, occurrence) pairs that exist. Returns the inserted ones.

    The template rows are locked (PostgreSQL) or the database is (SQLite), so conflicts only come
    from a concurrent single create; the unique constraint makes those a no-op.
    """
    if not rows:
        return []
    positions_assign_at_end(sorted(rows, key=lambda r: (r.occurrence_at, r.recurring_template_id)))
    if connection.vendor != "postgresql":
        Task.objects.bulk_create(rows, ignore_conflicts=True)
        return list(
            Task.objects.filter(
                recurring_template_id__in={r.recurring_template_id for r in rows}, created_at=stamp
            ).order_by("occurrence_at")
        )
    returned = _insert_unnest(rows, stamp=stamp)
    by_key = {(r.recurring_template_id, r.occurrence_at): r for r in rows}
    created = []
    for pk, template_id, occurrence in returned:
        task = by_key[(template_id, occurrence)]
        task.pk = pk
        task.updated_at = stamp
        task._state.adding = False
        task._state.db = connection.alias
        created.append(task)
    created.sort(key=lambda t: t.occurrence_at)
    return created


def _insert_unnest(rows, *, stamp):
    """PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) ... RETURNING (id, template, occurrence).

    It tells exactly which rows were inserted (bulk_create(ignore_conflicts=True) does not) at a
    fraction of its Python cost. A Task column added later must be nullable or have a database
    default, or be listed here.
    """
    fields = {f.attname: f for f in Task._meta.concrete_fields}
    arrays = ", ".join(f"%s::{fields[c].db_type(connection)}[]" for c in _INSERT_VARYING)
    sql = (
        f"INSERT INTO {Task._meta.db_table} ({', '.join(_INSERT_VARYING)}, due_at, status, version, edited_fields,"
        f" completed_at, created_at, updated_at) "
        f"SELECT v.*, v.occurrence_at, %s, 1, '[]'::jsonb, NULL, %s, %s "
        f"FROM unnest({arrays}) AS v({', '.join(_INSERT_VARYING)}) "
        f"ON CONFLICT DO NOTHING RETURNING id, recurring_template_id, occurrence_at"
    )
    params = [[getattr(r, c) for r in rows] for c in _INSERT_VARYING]
    with connection.cursor() as cursor:
        cursor.execute(sql, [Status.TODO, stamp, stamp, *params])
        return cursor.fetchall()


GENERATION_STATE = (
    "enabled",
    "instances_created",
    "last_occurrence_at",
    "last_generated_at",
    "next_occurrence_at",
    "next_run_at",
)


def _save_generation_state(templates):
    """One UPDATE for the batch. On PostgreSQL from unnest()ed arrays: bulk_update's CASE WHEN per row
    costs more Python time than the rest of the batch together."""
    if connection.vendor != "postgresql":
        RecurringTaskTemplate.objects.bulk_update(templates, list(GENERATION_STATE))
        return
    types = {"enabled": "boolean", "instances_created": "integer"}
    columns = ", ".join(f"{f} = v.{f}" for f in GENERATION_STATE)
    arrays = ", ".join(["%s::bigint[]"] + [f"%s::{types.get(f, 'timestamptz')}[]" for f in GENERATION_STATE])
    values = [[t.pk for t in templates]] + [[getattr(t, f) for t in templates] for f in GENERATION_STATE]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {RecurringTaskTemplate._meta.db_table} AS t SET {columns} "
            f"FROM unnest({arrays}) AS v(id, {', '.join(GENERATION_STATE)}) WHERE t.id = v.id",
            values,
        )


def _plan_batch(templates, *, now, cap, stamp):
    """({template pk: (due, next, skipped)}, instance rows). A template with a broken rule is disabled."""
    rows, plans = [], {}
    for template in templates:
        try:
            due, nxt, skipped = _plan(template, now, cap)
        except RecurrenceError:
            logger.warning("recurring template %s has an invalid rule; disabled", template.pk)
            template.enabled = False
            due, nxt, skipped = [], None, 0
        plans[template.pk] = (due, nxt, skipped)
        rows.extend(_instance_row(template, occurrence, stamp) for occurrence in due)
    return plans, rows


def _advance(templates, plans, created, *, stamp):
    """Move each template's generation state past this batch. Returns the skipped total."""
    counts = collections.Counter(task.recurring_template_id for task in created)
    skipped_total = 0
    for template in templates:
        due, nxt, skipped = plans[template.pk]
        skipped_total += skipped
        template.instances_created += counts[template.pk]
        if due:
            template.last_occurrence_at = max(due[-1], template.last_occurrence_at or due[-1])
            template.last_generated_at = stamp
        set_next(template, nxt if template.enabled else None)
    return skipped_total


@transaction.atomic
def _process_batch(*, now, batch_size, cap):
    templates = list(
        recurring_due_templates(now=now)
        .select_related("project")
        .order_by("next_run_at", "id")
        .select_for_update(skip_locked=True, of=("self",))[:batch_size]
    )
    if not templates:
        return 0, 0, 0
    stamp = timezone.now()
    plans, rows = _plan_batch(templates, now=now, cap=cap, stamp=stamp)
    created = _insert_instances(rows, stamp=stamp)
    skipped_total = _advance(templates, plans, created, stamp=stamp)
    _save_generation_state(templates)
    by_pk = {t.pk: t for t in templates}
    for task in created:
        template = by_pk[task.recurring_template_id]
        task.recurring_template = template
        task.project = template.project
    if created:
        record_instances_created(created)
        signals.recurring_instances_created.send(sender=Task, instances=created)
    return len(templates), len(created), skipped_total


def recurring_process_due(*, now=None, batch_size=None, max_templates=None):
    """Create the instances of every due template, batch by batch (one transaction per batch).

    Safe to run concurrently: each batch locks its templates with FOR UPDATE SKIP LOCKED, and the
    unique (template, occurrence_at) constraint makes a repeat a no-op.
    """
    now = now or timezone.now()
    batch_size = batch_size or conf.RECURRING_BATCH_SIZE
    max_templates = max_templates or conf.RECURRING_MAX_TEMPLATES_PER_RUN
    cap = conf.RECURRING_CATCH_UP_CAP
    report = {"templates": 0, "created": 0, "skipped": 0, "batches": 0}
    while report["templates"] < max_templates:
        n, created, skipped = _process_batch(
            now=now, batch_size=min(batch_size, max_templates - report["templates"]), cap=cap
        )
        if not n:
            break
        report["templates"] += n
        report["created"] += created
        report["skipped"] += skipped
        report["batches"] += 1
    return report


@transaction.atomic
def _cleanup_batch(*, cutoff, batch_size):
    rows = list(
        Task.objects.select_for_update(skip_locked=True)
        .filter(recurring_template__isnull=False, status=Status.DONE, completed_at__lt=cutoff)
        .order_by("completed_at", "id")
        .values_list("id", "recurring_template_id")[:batch_size]
    )
    if not rows:
        return 0
    per_template = collections.Counter(template_id for _, template_id in rows)
    Task.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
    RecurringTaskTemplate.objects.filter(pk__in=per_template).update(
        instances_cleaned=F("instances_cleaned")
        + Case(
            *[When(pk=pk, then=Value(n)) for pk, n in per_template.items()],
            default=Value(0),
            output_field=models.PositiveIntegerField(),
        ),
    )
    return len(rows)


def recurring_cleanup_completed(*, now=None, older_than=None, batch_size=None):
    """Delete done instances completed before the cutoff, batch by batch.

    Each template counts what was removed (instances_cleaned), so its history count (cleaned + done
    instances still present) stays right. Retention deletes send no task_deleted event.
    """
    now = now or timezone.now()
    cutoff = now - (older_than if older_than is not None else timedelta(days=conf.RECURRING_CLEANUP_AFTER_DAYS))
    batch_size = batch_size or conf.RECURRING_CLEANUP_BATCH
    total = 0
    while deleted := _cleanup_batch(cutoff=cutoff, batch_size=batch_size):
        total += deleted
    return {"deleted": total}
