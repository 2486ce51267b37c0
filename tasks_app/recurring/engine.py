"""Generation of recurring instances: due templates, planning, the batched insert, cleanup.

`recurring_process_due` (run by recurring.process_recurring_tasks) locks due templates batch by
batch (FOR UPDATE SKIP LOCKED), plans each one's occurrences, and writes the batch: on PostgreSQL one
statement inserts its instances and their task.created events and saves every template's generation
state (SQLite: a few bulk statements). Per batch of 500 templates the queries are the same whatever
their number: lock, projects, board ranks, that write (test_recurring_engine counts them).
"""

import collections
import collections.abc
import contextlib
import functools
import logging
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg
from dateutil.relativedelta import relativedelta
from django.db import connection, models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from core.exceptions import ApplicationError, NotFound
from tasks_app import conf, signals
from tasks_app.changefeed import events_publish_on_commit
from tasks_app.models import CatchUp, Event, Project, RecurrenceMode, RecurringTaskTemplate, Status, Task
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


class _Planned:
    """One instance a batch will insert: its template, occurrence and board rank (the columns that vary per
    instance, _INSERT_VARYING, read through the template), and its pk once inserted. No Task is built for
    it unless a receiver asks for one (_Instances): building 10,000 Tasks cost more than their insert."""

    __slots__ = ("template", "occurrence_at", "position", "pk")
    status = Status.TODO  # what positions_assign_at_end reads

    def __init__(self, template, occurrence):
        self.template, self.occurrence_at, self.position, self.pk = template, occurrence, None, None

    @property
    def project_id(self):
        return self.template.project_id

    @property
    def recurring_template_id(self):
        return self.template.pk


_FACTORY_FIELDS = (
    "project_id",
    "title",
    "description",
    "priority",
    "assignee_id",
    "created_by_id",
    "recurring_template_id",
    "due_at",
    "occurrence_at",
    "edited_fields",
    "position",
)


class _InstanceFactory:
    """_instance_row for a whole batch, from _Planned rows: Task(*values), positionally, as the ORM builds
    fetched rows (the keyword form costs several times more, which shows at 10,000 instances). Same values as
    _instance_row, and the board rank."""

    def __init__(self, stamp):
        names = [f.attname for f in Task._meta.concrete_fields]
        self.base = [getattr(_instance_row(RecurringTaskTemplate(), None, stamp), name) for name in names]
        self.slots = [names.index(name) for name in _FACTORY_FIELDS]

    def __call__(self, planned):
        template, occurrence = planned.template, planned.occurrence_at
        values = self.base.copy()
        given = (
            template.project_id,
            template.title,
            template.description,
            template.priority,
            template.assignee_id,
            template.created_by_id,
            template.pk,
            occurrence,
            occurrence,
            [],  # a list of its own (the field's default is `list`)
            planned.position,
        )
        for slot, value in zip(self.slots, given, strict=True):
            values[slot] = value
        return Task(*values)


class _Instances(collections.abc.Sequence):
    """The instances a batch created, as saved Tasks each with its .recurring_template and .project, built on
    first use: a recurring_instances_created receiver that finds nothing to do from `project_ids` (the
    signal's other argument) builds none."""

    def __init__(self, build, *, count, project_ids):
        self._build, self._tasks = build, None
        self.count, self.project_ids = count, project_ids

    def _all(self):
        if self._tasks is None:
            self._tasks = self._build()
        return self._tasks

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self._all()[index]


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
    signals.recurring_instances_created.send(sender=Task, instances=[task], project_ids={task.project_id})
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


def _lock_due(*, now, batch_size):
    """The next due templates, locked (FOR UPDATE SKIP LOCKED), each with its project (one query for the
    batch's few projects: select_related would build a Project per template)."""
    templates = _fetch(
        recurring_due_templates(now=now)
        .order_by("next_run_at", "id")
        .select_for_update(skip_locked=True, of=("self",))[:batch_size]
    )
    if templates:
        projects = Project.objects.in_bulk({t.project_id for t in templates})
        project_field = RecurringTaskTemplate._meta.get_field("project")
        for template in templates:
            project_field.set_cached_value(template, projects[template.project_id])
    return templates


def _plan_batch(templates, *, now, cap):
    """({template pk: (due, next, skipped)}, the instances to insert as _Planned rows, with their board
    ranks). A template with a broken rule is disabled."""
    rows, plans = [], {}
    for template in templates:
        try:
            due, nxt, skipped = _plan(template, now, cap)
        except RecurrenceError:
            logger.warning("recurring template %s has an invalid rule; disabled", template.pk)
            template.enabled = False
            due, nxt, skipped = [], None, 0
        plans[template.pk] = (due, nxt, skipped)
        rows.extend(_Planned(template, occurrence) for occurrence in due)
    if rows:
        positions_assign_at_end(sorted(rows, key=lambda r: (r.occurrence_at, r.template.pk)))
    return plans, rows


def _advance(templates, plans, *, stamp):
    """Move each template's generation state past this batch, but for instances_created (_count_created,
    once the inserted rows are known). Returns the skipped total."""
    skipped_total = 0
    for template in templates:
        due, nxt, skipped = plans[template.pk]
        skipped_total += skipped
        if due:
            template.last_occurrence_at = max(due[-1], template.last_occurrence_at or due[-1])
            template.last_generated_at = stamp
        set_next(template, nxt if template.enabled else None)
    return skipped_total


def _count_created(templates, created):
    counts = collections.Counter(task.recurring_template_id for task in created)
    for template in templates:
        template.instances_created += counts[template.pk]


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
_TEMPLATE_COLUMNS = ("project_id", "title", "description", "priority", "assignee_id", "created_by_id")
GENERATION_STATE = (
    "enabled",
    "instances_created",
    "last_occurrence_at",
    "last_generated_at",
    "next_occurrence_at",
    "next_run_at",
)


def _write_batch(templates, rows, *, stamp):
    """Insert the _Planned rows, with their task.created events, skipping (template, occurrence) pairs that
    exist, and save the templates' generation state (_advance'd; instances_created counts what was inserted).
    Returns the inserted instances, by occurrence, as an _Instances.

    The template rows are locked (PostgreSQL) or the database is (SQLite), so conflicts only come
    from a concurrent single create; the unique constraint makes those a no-op.
    """
    by_pk = {t.pk: t for t in templates}
    if connection.vendor != "postgresql":
        created = []
        if rows:
            instance = _InstanceFactory(stamp)
            Task.objects.bulk_create([instance(r) for r in rows], ignore_conflicts=True)
            created = list(
                Task.objects.filter(recurring_template_id__in=by_pk, created_at=stamp).order_by("occurrence_at")
            )
            record_instances_created(created)
        _count_created(templates, created)
        RecurringTaskTemplate.objects.bulk_update(templates, list(GENERATION_STATE))
        return _Instances(
            functools.partial(_with_template, created, by_pk),
            count=len(created),
            project_ids={t.project_id for t in created},
        )
    returned = _write_batch_postgresql(templates, rows, stamp=stamp)
    by_key = {(r.template.pk, r.occurrence_at): r for r in rows}
    created, events = [], []
    for pk, template_id, occurrence, event_id in returned:
        planned = by_key[(template_id, occurrence)]
        planned.pk = pk
        created.append(planned)
        events.append(_EventRef(event_id, planned.template.project_id))
    _count_created(templates, created)
    if events:
        events_publish_on_commit(events)
    return _Instances(
        functools.partial(_saved_instances, created, by_pk, stamp),
        count=len(created),
        project_ids={event.project_id for event in events},
    )


def _saved_instances(created, by_pk, stamp):
    """The saved Tasks of _Planned rows inserted with their pk (PostgreSQL's batch statement)."""
    instance, alias, pk_name = _InstanceFactory(stamp), connection.alias, Task._meta.pk.attname
    tasks = []
    for planned in created:
        task = instance(planned)
        setattr(task, pk_name, planned.pk)
        task.updated_at = stamp
        task._state.adding = False
        task._state.db = alias
        tasks.append(task)
    return _with_template(tasks, by_pk)


def _with_template(tasks, by_pk):
    """The tasks, each with its template and project cached (what recurring_instances_created promises)."""
    template_field, project_field = Task._meta.get_field("recurring_template"), Task._meta.get_field("project")
    for task in tasks:
        template = by_pk[task.recurring_template_id]
        template_field.set_cached_value(task, template)
        project_field.set_cached_value(task, template.project)
    return tasks


class _EventRef(NamedTuple):
    """What events_publish_on_commit reads of an event."""

    pk: int
    project_id: int


@functools.cache
def _batch_sql():
    """PostgreSQL: a batch's writes as one statement (see _write_batch_postgresql)."""
    task, event, template = Task._meta.db_table, Event._meta.db_table, RecurringTaskTemplate._meta.db_table
    document = " || ".join(
        f"setweight(to_tsvector(%(config)s::regconfig, {text}), '{weight}')"
        for text, weight in (("coalesce(v.title, '')", "A"), ("coalesce(v.description, '')", "B"), ("''", "C"))
    )
    fields = {f.attname: f for f in Task._meta.concrete_fields}
    arrays = ", ".join(f"%({c})s::{fields[c].db_type(connection)}[]" for c in _INSERT_VARYING)
    state_types = {"enabled": "boolean", "instances_created": "integer"}
    state = [f for f in GENERATION_STATE if f != "instances_created"]
    state_arrays = ", ".join(f"%({f})s::{state_types.get(f, 'timestamptz')}[]" for f in state)
    return (
        # The instances, from one array per column that varies.
        f"WITH ins AS ("
        f"INSERT INTO {task} ({', '.join(_INSERT_VARYING)}, due_at, status, version, edited_fields, completed_at,"
        f" created_at, updated_at, search_vector) "
        f"SELECT {', '.join(f'v.{c}' for c in _INSERT_VARYING)}, v.occurrence_at, %(status)s, 1, '[]'::jsonb, NULL,"
        f" %(stamp)s, %(stamp)s, {document} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS v({', '.join(_INSERT_VARYING)}, n) ORDER BY v.n "
        f"ON CONFLICT DO NOTHING "
        f"RETURNING id, project_id, title, status, recurring_template_id, occurrence_at"
        # Their task.created events, in the order record_instances_created writes them.
        f"), ev AS ("
        f"INSERT INTO {event} (project_id, task_id, actor_id, type, data, created_at) "
        f"SELECT project_id, id, NULL, %(event_type)s,"
        f" jsonb_build_object('title', title, 'status', status, 'recurring_template', recurring_template_id),"
        f" %(stamp)s FROM ins ORDER BY occurrence_at, id "
        f"RETURNING id, task_id"
        # The templates' generation state; instances_created grows by what `ins` inserted.
        f"), counts AS ("
        f"SELECT recurring_template_id AS id, count(*) AS created FROM ins GROUP BY 1"
        f"), upd AS ("
        f"UPDATE {template} AS t SET {', '.join(f'{f} = s.{f}' for f in state)},"
        f" instances_created = t.instances_created + coalesce(counts.created, 0) "
        f"FROM unnest(%(ids)s::bigint[], {state_arrays}) AS s(id, {', '.join(state)}) "
        f"LEFT JOIN counts ON counts.id = s.id "
        f"WHERE t.id = s.id AND t.id = ANY(%(ids)s::bigint[])"
        f") "
        f"SELECT ins.id, ins.recurring_template_id, ins.occurrence_at, ev.id "
        f"FROM ins JOIN ev ON ev.task_id = ins.id ORDER BY ins.occurrence_at, ins.id"
    )


def _write_batch_postgresql(templates, rows, *, stamp):
    """PostgreSQL: _write_batch in one statement: INSERT ... SELECT FROM unnest(one array per varying column)
    ... ON CONFLICT DO NOTHING RETURNING; an INSERT of the task.created events of what that inserted; an
    UPDATE ... FROM unnest() of every template's generation state. Returns (task id, template id, occurrence,
    event id) per inserted row, by occurrence then id (the order the instances are created in).

    It tells exactly which rows were inserted (bulk_create(ignore_conflicts=True) does not), and costs a
    fraction of the ORM's Python time: bulk_create of the instances, event_record_many's bulk_create of
    their events and bulk_update's CASE WHEN per row each cost more than the rest of the batch. Arrays go
    as array literals (_array).

    The events are what record_instances_created writes through event_record_many (type, data, order,
    actor none; created_at is the batch's stamp), in the instances' own statement, and the change feed is
    woken on commit the same way (events_publish_on_commit, ids only). The search document is computed in
    the INSERT as search_reindex computes it for a task without comments (test_recurring_engine checks
    they agree), instead of an UPDATE that rewrote every new row. A Task column added later must be
    nullable or have a database default, or be listed here.
    """
    params = {column: _array([getattr(r.template, column) for r in rows]) for column in _TEMPLATE_COLUMNS}
    params["recurring_template_id"] = _array([r.template.pk for r in rows])
    params["occurrence_at"] = _array([r.occurrence_at for r in rows])
    params["position"] = _array([r.position for r in rows])
    params |= {
        "status": Status.TODO,
        "stamp": stamp,
        "config": conf.TASK_SEARCH_LANGUAGE,
        "event_type": "task.created",
        "ids": _array([t.pk for t in templates]),
    }
    for field in GENERATION_STATE:
        if field != "instances_created":
            params[field] = _array([getattr(t, field) for t in templates])
    with _binary_cursor() as cursor:
        cursor.execute(_batch_sql(), params)
        return cursor.fetchall()


@contextlib.contextmanager
def _binary_cursor():
    """PostgreSQL: a cursor of the connection that reads results in binary (psycopg's C loaders: reading a
    timestamptz as text goes through Django's Python loader, ~3 µs a value, most of reading 500 templates),
    wrapped as Django wraps its own, so its queries are logged and counted. Its parameters are bound
    server-side; no statement is prepared (the connection's prepare_threshold, None unless configured)."""
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    raw = psycopg.Cursor(connection.connection)
    raw.format = psycopg.pq.Format.BINARY
    with connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw) as cursor:
        yield cursor


def _fetch(queryset):
    """list(queryset) for a queryset of plain model rows (no select_related, no annotations), read through
    _binary_cursor on PostgreSQL; the same instances, fields and field converters as the ORM's."""
    if connection.vendor != "postgresql":
        return list(queryset)
    if queryset.query.select_related or queryset.query.annotations or queryset._prefetch_related_lookups:
        raise ValueError("_fetch reads plain rows only")
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    columns = [column for column, _, _ in compiler.select]
    with _binary_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    converters = compiler.get_converters(columns)
    if converters:
        rows = compiler.apply_converters(rows, converters)
    names = [column.target.attname for column in columns]
    return [queryset.model.from_db(queryset.db, names, row) for row in rows]


def _array(values):
    """A PostgreSQL array literal of ints, bools, aware datetimes, strings or None, for one `%s::type[]`
    parameter: psycopg adapts a list element by element in Python (~3 µs a datetime, 5 times this)."""
    return "{" + ",".join([_ARRAY_ITEM.get(type(value), _array_item)(value) for value in values]) + "}"


def _array_item(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return _aware_isoformat(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"no array literal for {type(value).__name__}")


def _aware_isoformat(value):
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.isoformat()  # with its offset


# The commonest exact types, without _array_item's chain of checks (any other type, subclasses included, goes
# through it).
_ARRAY_ITEM = {type(None): lambda value: "NULL", int: str, datetime: _aware_isoformat}


@transaction.atomic
def _process_batch(*, now, batch_size, cap):
    templates = _lock_due(now=now, batch_size=batch_size)
    if not templates:
        return 0, 0, 0
    stamp = timezone.now()
    plans, rows = _plan_batch(templates, now=now, cap=cap)
    skipped_total = _advance(templates, plans, stamp=stamp)
    created = _write_batch(templates, rows, stamp=stamp)
    if created.count and signals.recurring_instances_created.has_listeners(Task):
        signals.recurring_instances_created.send(sender=Task, instances=created, project_ids=created.project_ids)
    return len(templates), created.count, skipped_total


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
