"""Writes and business rules for projects, members, tasks and comments.

Every service is atomic: bad input raises ApplicationError before or instead of a partial write.
Domain events (tasks_app.signals) are sent inside the transaction so the side-effect rows other
apps write commit together with the change.
"""

import collections
import itertools
import logging
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.db import connection, models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils import timezone as dj_timezone

from core.enqueue import enqueue_on_commit
from core.exceptions import ApplicationError, Conflict, Forbidden, NotFound
from tasks_app import conf, reminders, signals, summaries
from tasks_app.models import (
    ROLE_RANK,
    CatchUp,
    Comment,
    Membership,
    Profile,
    Project,
    RecurrenceMode,
    RecurringTaskTemplate,
    Role,
    Status,
    Task,
)
from tasks_app.permissions import has_role, project_role, require_role
from tasks_app.recurrence import RecurrenceError, Schedule, to_local_naive, to_utc

logger = logging.getLogger(__name__)

ASSIGNABLE_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER)


# --- users -----------------------------------------------------------------
def profile_ensure_for_new_user(sender, instance, created, **kwargs):
    if created:
        Profile.objects.get_or_create(user=instance)


@transaction.atomic
def profile_update(*, user, data):
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    user_fields = [f for f in ("first_name", "last_name") if f in data]
    for field in user_fields:
        setattr(user, field, data[field])
    if user_fields:
        user.save(update_fields=user_fields)
    profile_fields = [f for f in ("timezone", "morning_hour") if f in data]
    for field in profile_fields:
        setattr(profile, field, data[field])
    if profile_fields:
        profile.full_clean()
        profile.save(update_fields=profile_fields)
    return user


# --- projects --------------------------------------------------------------
@transaction.atomic
def project_create(*, actor, name, description=""):
    project = Project.objects.create(name=name, description=description, owner=actor)
    Membership.objects.create(project=project, user=actor, role=Role.OWNER)
    return project


@transaction.atomic
def project_update(*, project, actor, data):
    require_role(user=actor, project=project, minimum=Role.ADMIN, action="change the project")
    fields = [f for f in ("name", "description", "archived") if f in data]
    for field in fields:
        setattr(project, field, data[field])
    if fields:
        project.save(update_fields=[*fields, "updated_at"])
    return project


@transaction.atomic
def project_delete(*, project, actor):
    require_role(user=actor, project=project, minimum=Role.OWNER, action="delete the project")
    project.delete()


def _require_manage_member(*, actor, project, target_role):
    """Owner manages everyone; admins manage members and viewers only. Nobody grants 'owner'."""
    require_role(user=actor, project=project, minimum=Role.ADMIN, action="manage members")
    if target_role == Role.OWNER:
        raise ApplicationError("The owner role cannot be granted or changed here.", fields={"role": "Cannot be 'owner'."})
    if ROLE_RANK[target_role] >= ROLE_RANK[Role.ADMIN] and project_role(user=actor, project=project) != Role.OWNER:
        raise Forbidden("Only the project owner can manage admins.", code="permission_denied")


@transaction.atomic
def membership_add(*, project, actor, user, role=Role.MEMBER):
    _require_manage_member(actor=actor, project=project, target_role=role)
    if Membership.objects.filter(project=project, user=user).exists():
        raise Conflict("This user is already a member.", fields={"user": "Already a member of this project."})
    return Membership.objects.create(project=project, user=user, role=role)


@transaction.atomic
def membership_update(*, membership, actor, role):
    _require_manage_member(actor=actor, project=membership.project, target_role=membership.role)
    _require_manage_member(actor=actor, project=membership.project, target_role=role)
    membership.role = role
    membership.save(update_fields=["role"])
    if role not in ASSIGNABLE_ROLES:
        _unassign_member(membership=membership, actor=actor)
    return membership


@transaction.atomic
def membership_remove(*, membership, actor):
    project = membership.project
    if membership.role == Role.OWNER:
        raise ApplicationError("The project owner cannot be removed.", fields={"user": "Owner cannot be removed."})
    if membership.user_id != actor.pk:  # anyone but the owner may leave a project
        _require_manage_member(actor=actor, project=project, target_role=membership.role)
    _unassign_member(membership=membership, actor=actor)
    membership.delete()


def _unassign_member(*, membership, actor):
    RecurringTaskTemplate.objects.filter(project=membership.project, assignee=membership.user).update(assignee=None)
    for task in Task.objects.filter(project=membership.project, assignee=membership.user).select_for_update():
        task_update(task=task, actor=actor, data={"assignee": None}, check_permission=False)


# --- tasks -----------------------------------------------------------------
def _validate_assignee(*, project, assignee):
    if assignee is None:
        return
    role = Membership.objects.filter(project=project, user=assignee).values_list("role", flat=True).first()
    if role is None:
        raise ApplicationError("The assignee must be a member of the project.",
                               fields={"assignee": "This user is not a member of the project."})
    if role not in ASSIGNABLE_ROLES:
        raise ApplicationError("Viewers cannot be assigned tasks.",
                               fields={"assignee": "Viewers have read-only access and cannot be assigned."})


def _require_writable(project):
    if project.archived:
        raise Conflict("The project is archived; unarchive it to change its tasks.", code="archived")


@transaction.atomic
def task_create(*, actor, project, title, description="", status=Status.TODO, priority=2, assignee=None,
                due_at=None, **extra):
    require_role(user=actor, project=project, minimum=Role.MEMBER, action="create tasks")
    _require_writable(project)
    _validate_assignee(project=project, assignee=assignee)
    now = timezone.now()
    task = Task.objects.create(
        project=project, title=title, description=description, status=status, priority=priority,
        assignee=assignee, created_by=actor, due_at=due_at,
        completed_at=now if status == Status.DONE else None, **extra,
    )
    signals.task_created.send(sender=Task, task=task, actor=actor)
    if assignee is not None:
        signals.task_assigned.send(sender=Task, task=task, actor=actor, previous_assignee_id=None)
    if status == Status.DONE:
        signals.task_completed.send(sender=Task, task=task, actor=actor)
    return task


def _json_value(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return value


TASK_EDITABLE_FIELDS = ("title", "description", "status", "priority", "assignee", "due_at")


@transaction.atomic
def task_update(*, task, actor, data, check_permission=True):
    """Apply `data` (a subset of TASK_EDITABLE_FIELDS). Returns the task; sends events for real changes."""
    task = Task.objects.select_for_update().select_related("project").get(pk=task.pk)
    if check_permission:
        require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="edit tasks")
        _require_writable(task.project)
    if "assignee" in data:
        _validate_assignee(project=task.project, assignee=data["assignee"])

    changes = {}
    for field in TASK_EDITABLE_FIELDS:
        if field not in data:
            continue
        attr = "assignee_id" if field == "assignee" else field
        old = getattr(task, attr)
        new = data[field].pk if field == "assignee" and data[field] is not None else data[field]
        if old != new:
            changes[field] = [_json_value(old), _json_value(new)]
            setattr(task, attr, new)
    if not changes:
        return task

    became_done = False
    if "status" in changes:
        previous_completed_at = task.completed_at
        became_done = task.status == Status.DONE
        task.completed_at = timezone.now() if became_done else None
        if previous_completed_at != task.completed_at:
            changes["completed_at"] = [_json_value(previous_completed_at), _json_value(task.completed_at)]
    if task.recurring_template_id:
        # Template updates leave fields a user changed on this instance alone.
        edited = set(task.edited_fields) | {f for f in changes if f in (*TEMPLATE_TASK_FIELDS, "due_at")}
        task.edited_fields = sorted(edited)
    task.version += 1
    task.save()
    reminders.reminders_follow_task(task=task, changes=changes)

    if task.recurring_template_id and "status" in changes and task.status in (Status.DONE, Status.CANCELLED):
        _recurring_instance_closed(task=task)
    signals.task_updated.send(sender=Task, task=task, actor=actor, changes=changes)
    if "assignee" in changes:
        signals.task_assigned.send(sender=Task, task=task, actor=actor, previous_assignee_id=changes["assignee"][0])
    if became_done:
        signals.task_completed.send(sender=Task, task=task, actor=actor)
    return task


def task_assign(*, task, actor, assignee):
    return task_update(task=task, actor=actor, data={"assignee": assignee})


@transaction.atomic
def task_delete(*, task, actor, payload=None):
    """Members delete tasks they created; admins and the owner delete any."""
    if not has_role(user=actor, project=task.project, minimum=Role.ADMIN):
        require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="delete tasks")
        if task.created_by_id != actor.pk:
            raise Forbidden("Only the task's creator or a project admin can delete it.", code="permission_denied")
    _require_writable(task.project)
    task_id = task.pk
    task.delete()
    task.pk = task_id
    if task.recurring_template_id:
        _recurring_instance_closed(task=task)  # an after_completion series must not stall on a deleted instance
    signals.task_deleted.send(sender=Task, task=task, task_id=task_id, actor=actor, payload=payload or {})


# --- comments --------------------------------------------------------------
@transaction.atomic
def comment_create(*, task, actor, body):
    require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="comment")
    _require_writable(task.project)
    comment = Comment.objects.create(task=task, author=actor, body=body)
    signals.comment_created.send(sender=Comment, comment=comment, actor=actor)
    return comment


@transaction.atomic
def comment_update(*, comment, actor, body):
    if comment.author_id != actor.pk:
        raise Forbidden("Only the author can edit a comment.", code="permission_denied")
    require_role(user=actor, project=comment.task.project, minimum=Role.MEMBER, action="edit comments")
    _require_writable(comment.task.project)
    previous = comment.body
    if previous == body:
        return comment
    comment.body = body
    comment.save(update_fields=["body", "updated_at"])
    signals.comment_updated.send(sender=Comment, comment=comment, actor=actor, previous_body=previous)
    return comment


@transaction.atomic
def comment_delete(*, comment, actor):
    project = comment.task.project
    if comment.author_id != actor.pk:
        require_role(user=actor, project=project, minimum=Role.ADMIN, action="delete others' comments")
    else:
        require_role(user=actor, project=project, minimum=Role.MEMBER, action="delete comments")
    comment.delete()


# --- recurring tasks -------------------------------------------------------
# Rules (README "Recurring tasks"):
# - a template generates one normal Task per occurrence; (template, occurrence_at) is unique;
# - creating or resuming a template starts at the first occurrence at or after now (no back-fill);
#   occurrences missed while enabled (downtime) are caught up per `catch_up`, capped;
# - template changes reach future (occurrence_at > now), not-started (todo) instances, except the
#   fields a user edited on the instance (Task.edited_fields).
TEMPLATE_TASK_FIELDS = ("title", "description", "priority", "assignee")
SCHEDULE_FIELDS = ("rrule", "dtstart", "timezone", "until", "count", "mode")
TEMPLATE_FIELDS = (*TEMPLATE_TASK_FIELDS, *SCHEDULE_FIELDS, "lead_time", "catch_up")
OPEN_STATUSES = (Status.TODO, Status.IN_PROGRESS)


def _schedule(template):
    try:
        return Schedule.for_template(template)
    except RecurrenceError as exc:
        raise ApplicationError(exc.message, fields={exc.field: exc.message})


def _set_next(template, occurrence):
    template.next_occurrence_at = occurrence
    template.next_run_at = occurrence - template.lead_time if occurrence is not None else None


def _has_open_instance(template):
    return template.instances.filter(status__in=OPEN_STATUSES).exists()


def _first_occurrence_from_now(template, schedule, now):
    """The next occurrence to create when (re)starting: at or after now, after the last one created."""
    if template.mode == RecurrenceMode.AFTER_COMPLETION and template.pk and _has_open_instance(template):
        return None
    start = now if template.last_occurrence_at is None else max(now, template.last_occurrence_at)
    return schedule.next_after(start, inclusive=start != template.last_occurrence_at)


def _after_completion_next(template, schedule, completed_at):
    """Todoist's `every!`: FREQ/INTERVAL counted from the completion, at the template's local time."""
    unit, n = schedule.after_completion_interval()
    if unit == "HOURLY":
        nxt = completed_at + timedelta(hours=n)
    else:
        delta = {"DAILY": relativedelta(days=n), "WEEKLY": relativedelta(weeks=n),
                 "MONTHLY": relativedelta(months=n), "YEARLY": relativedelta(years=n)}[unit]
        day = (to_local_naive(completed_at, schedule.zone) + delta).date()
        wall = to_local_naive(template.dtstart, schedule.zone).time().replace(microsecond=0)
        nxt = to_utc(datetime.combine(day, wall), schedule.zone)
    rule = schedule.rule
    if rule._count and template.instances_created >= rule._count:
        return None
    if rule._until and to_local_naive(nxt, schedule.zone) > rule._until:
        return None
    return nxt


def recurring_template_schedule_from_now(*, template, now=None):
    """Point a new (or resumed) template at its first occurrence at or after now."""
    first = _first_occurrence_from_now(template, _schedule(template), now or dj_timezone.now())
    _set_next(template, first if template.enabled else None)


@transaction.atomic
def recurring_template_create(*, actor, project, title, rrule, dtstart, timezone="UTC", description="",
                              priority=2, assignee=None, until=None, count=None, mode=RecurrenceMode.SCHEDULE,
                              lead_time=timedelta(0), catch_up=CatchUp.ALL, enabled=True, now=None):
    require_role(user=actor, project=project, minimum=Role.MEMBER, action="create recurring tasks")
    _require_writable(project)
    _validate_assignee(project=project, assignee=assignee)
    template = RecurringTaskTemplate(
        project=project, title=title, description=description, priority=priority, assignee=assignee,
        created_by=actor, rrule=rrule, dtstart=dtstart, timezone=timezone, until=until, count=count, mode=mode,
        lead_time=lead_time, catch_up=catch_up, enabled=enabled,
    )
    schedule = _schedule(template)
    if enabled:
        _set_next(template, _first_occurrence_from_now(template, schedule, now or dj_timezone.now()))
    template.save()
    return template


@transaction.atomic
def recurring_template_update(*, template, actor, data):
    """Save template changes; `recurring.update_recurring_task_template` applies them to instances."""
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").get(pk=template.pk)
    require_role(user=actor, project=template.project, minimum=Role.MEMBER, action="edit recurring tasks")
    _require_writable(template.project)
    if "assignee" in data:
        _validate_assignee(project=template.project, assignee=data["assignee"])
    changed = []
    for field in TEMPLATE_FIELDS:
        if field not in data:
            continue
        attr = "assignee_id" if field == "assignee" else field
        new = data[field].pk if field == "assignee" and data[field] is not None else data[field]
        if getattr(template, attr) != new:
            setattr(template, attr, new)
            changed.append(field)
    if not changed:
        return template
    _schedule(template)  # validates the new combination before anything is written
    return recurring_template_changed(template=template, changed=changed)


@transaction.atomic
def recurring_template_changed(*, template, changed):
    """Save a template whose `changed` fields were set (API or admin) and queue applying them."""
    if set(changed) & {*SCHEDULE_FIELDS, "enabled"} or not template.enabled:
        # Generation waits until the apply task has re-timed the future instances.
        _set_next(template, None)
        template.reschedule_pending = True
    elif "lead_time" in changed:
        _set_next(template, template.next_occurrence_at)
    template.apply_pending = True
    template.enqueued_at = dj_timezone.now()
    template.version += 1
    template.save()
    enqueue_on_commit("recurring.update_recurring_task_template", args=[template.pk])
    return template


@transaction.atomic
def recurring_template_apply(*, template_id, now=None):
    """Apply a template's changes to its future, not-started instances. Idempotent.

    Each of title/description/priority/assignee is copied unless the user edited it on that
    instance. After a schedule change the future instances are re-timed, in order, onto the new
    rule's next occurrences (due_at follows unless the user edited it); instances the new rule has
    no room for are deleted, or kept without an occurrence if a user edited them.
    """
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").filter(
        pk=template_id).first()
    if template is None or not template.apply_pending:
        return {"template": template_id, "updated": 0, "deleted": 0}
    now = now or dj_timezone.now()
    future = list(Task.objects.select_for_update().filter(
        recurring_template=template, status=Status.TODO, occurrence_at__gt=now).order_by("occurrence_at"))
    changes = {task.pk: {} for task in future}
    for task in future:
        for field in TEMPLATE_TASK_FIELDS:
            attr = "assignee_id" if field == "assignee" else field
            if field in task.edited_fields or getattr(task, attr) == getattr(template, attr):
                continue
            changes[task.pk][field] = [getattr(task, attr), getattr(template, attr)]
            setattr(task, attr, getattr(template, attr))

    deleted, reset = [], False
    schedule = _schedule(template)
    if template.reschedule_pending:
        last = None
        if template.mode == RecurrenceMode.SCHEDULE and future:
            taken = set(template.instances.exclude(pk__in=[t.pk for t in future])
                        .filter(occurrence_at__gt=now).values_list("occurrence_at", flat=True))
            slots = []
            for occurrence in schedule.iter_from(now, inclusive=False):
                if len(slots) == len(future):
                    break
                if occurrence not in taken:
                    slots.append(occurrence)
            Task.objects.filter(pk__in=[t.pk for t in future]).update(occurrence_at=None)
            reset = True
            for task, slot in itertools.zip_longest(future, slots):
                if task is None:
                    break
                old = task.occurrence_at
                task.occurrence_at = slot
                if slot is None and not task.edited_fields:
                    deleted.append(task)
                    continue
                if slot is not None and "due_at" not in task.edited_fields and task.due_at != slot:
                    changes[task.pk]["due_at"] = [task.due_at, slot]
                    task.due_at = slot
                if old != slot:
                    changes[task.pk]["occurrence_at"] = [old, slot]
            last = slots[-1] if slots else None
        if not template.enabled:
            _set_next(template, None)
        elif template.mode == RecurrenceMode.AFTER_COMPLETION:
            _set_next(template, None if _has_open_instance(template) else schedule.next_after(now, inclusive=True))
        elif last is not None:
            _set_next(template, schedule.next_after(last))
        else:
            _set_next(template, schedule.next_after(now, inclusive=True))

    updated = 0
    for task in future:
        if task in deleted:
            continue
        if not changes[task.pk]:
            if reset:
                task.save(update_fields=["occurrence_at"])  # put back after the reset above
            continue
        task.version += 1
        task.save()
        updated += 1
        json_changes = {k: [_json_value(a), _json_value(b)] for k, (a, b) in changes[task.pk].items()}
        signals.task_updated.send(sender=Task, task=task, actor=None, changes=json_changes)
    for task in deleted:
        task_id = task.pk
        task.delete()
        task.pk = task_id
        signals.task_deleted.send(sender=Task, task=task, task_id=task_id, actor=None, payload={})
    template.apply_pending = False
    template.reschedule_pending = False
    template.save(update_fields=["apply_pending", "reschedule_pending", "next_occurrence_at", "next_run_at",
                                 "updated_at"])
    return {"template": template.pk, "updated": updated, "deleted": len(deleted)}


@transaction.atomic
def recurring_template_pause(*, template, actor):
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").get(pk=template.pk)
    require_role(user=actor, project=template.project, minimum=Role.MEMBER, action="pause recurring tasks")
    if template.enabled:
        template.enabled = False
        _set_next(template, None)
        template.save(update_fields=["enabled", "next_occurrence_at", "next_run_at", "updated_at"])
    return template


@transaction.atomic
def recurring_template_resume(*, template, actor, now=None):
    """Resume from now on: occurrences that fell in the pause are not created."""
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").get(pk=template.pk)
    require_role(user=actor, project=template.project, minimum=Role.MEMBER, action="resume recurring tasks")
    _require_writable(template.project)
    if not template.enabled:
        template.enabled = True
        _set_next(template, _first_occurrence_from_now(template, _schedule(template), now or dj_timezone.now()))
        template.save(update_fields=["enabled", "next_occurrence_at", "next_run_at", "updated_at"])
    return template


@transaction.atomic
def recurring_template_delete(*, template, actor):
    """Members delete templates they created; admins any. Instances stay, as ordinary tasks."""
    if not has_role(user=actor, project=template.project, minimum=Role.ADMIN):
        require_role(user=actor, project=template.project, minimum=Role.MEMBER, action="delete recurring tasks")
        if template.created_by_id != actor.pk:
            raise Forbidden("Only the template's creator or a project admin can delete it.", code="permission_denied")
    template.delete()


def _instance_row(template, occurrence, stamp):
    return Task(
        project_id=template.project_id, title=template.title, description=template.description,
        priority=template.priority, assignee_id=template.assignee_id, created_by_id=template.created_by_id,
        status=Status.TODO, due_at=occurrence, occurrence_at=occurrence, recurring_template_id=template.pk,
        created_at=stamp,
    )


@transaction.atomic
def recurring_instance_create(*, template_id, occurrence_at, now=None):
    """Create the instance of one occurrence. Idempotent: returns (task, created)."""
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").filter(
        pk=template_id).first()
    if template is None:
        raise NotFound("Recurring task not found.", code="not_found")
    schedule = _schedule(template)
    if template.mode == RecurrenceMode.SCHEDULE and not schedule.is_occurrence(occurrence_at):
        raise ApplicationError("Not an occurrence of this rule.",
                               fields={"occurrence_at": "This time is not an occurrence of the rule."})
    existing = Task.objects.filter(recurring_template=template, occurrence_at=occurrence_at).first()
    if existing is not None:
        return existing, False
    now = now or dj_timezone.now()
    task = _instance_row(template, occurrence_at, now)
    task.save(force_insert=True)
    task.recurring_template = template
    signals.recurring_instances_created.send(sender=Task, instances=[task])
    template.instances_created += 1
    template.last_generated_at = now
    if template.last_occurrence_at is None or occurrence_at > template.last_occurrence_at:
        template.last_occurrence_at = occurrence_at
    if template.mode == RecurrenceMode.AFTER_COMPLETION:
        _set_next(template, None)
    elif template.next_occurrence_at is not None and occurrence_at >= template.next_occurrence_at:
        _set_next(template, schedule.next_after(occurrence_at))
    template.save()
    return task, True


def recurring_due_templates(*, now=None):
    """Templates whose next instance is due (the check process_recurring_tasks runs)."""
    now = now or dj_timezone.now()
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


_INSERT_VARYING = ("project_id", "title", "description", "priority", "assignee_id", "created_by_id",
                   "recurring_template_id", "occurrence_at")


def _insert_instances(rows, *, stamp):
    """Insert instance rows, skipping (template, occurrence) pairs that exist. Returns the inserted ones.

    The template rows are locked (PostgreSQL) or the database is (SQLite), so conflicts only come
    from a concurrent single create; the unique constraint makes those a no-op.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        Task.objects.bulk_create(rows, ignore_conflicts=True)
        return list(Task.objects.filter(recurring_template_id__in={r.recurring_template_id for r in rows},
                                        created_at=stamp).order_by("occurrence_at"))
    # PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) ... RETURNING, which tells exactly which
    # rows were inserted (bulk_create(ignore_conflicts=True) does not) at a fraction of its Python cost.
    # A Task column added later must be nullable or have a database default, or be listed here.
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
        returned = cursor.fetchall()
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


GENERATION_STATE = ("enabled", "instances_created", "last_occurrence_at", "last_generated_at", "next_occurrence_at",
                    "next_run_at")


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


@transaction.atomic
def _process_batch(*, now, batch_size, cap):
    templates = list(
        recurring_due_templates(now=now).select_related("project").order_by("next_run_at", "id")
        .select_for_update(skip_locked=True, of=("self",))[:batch_size]
    )
    if not templates:
        return 0, 0, 0
    stamp = dj_timezone.now()
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
    by_pk = {t.pk: t for t in templates}
    created = _insert_instances(rows, stamp=stamp)
    counts = collections.Counter(task.recurring_template_id for task in created)
    skipped_total = 0
    for template in templates:
        due, nxt, skipped = plans[template.pk]
        skipped_total += skipped
        template.instances_created += counts[template.pk]
        if due:
            template.last_occurrence_at = max(due[-1], template.last_occurrence_at or due[-1])
            template.last_generated_at = stamp
        _set_next(template, nxt if template.enabled else None)
    _save_generation_state(templates)
    for task in created:
        template = by_pk[task.recurring_template_id]
        task.recurring_template = template
        task.project = template.project
    if created:
        signals.recurring_instances_created.send(sender=Task, instances=created)
    return len(templates), len(created), skipped_total


def recurring_process_due(*, now=None, batch_size=None, max_templates=None):
    """Create the instances of every due template, batch by batch (one transaction per batch).

    Safe to run concurrently: each batch locks its templates with FOR UPDATE SKIP LOCKED, and the
    unique (template, occurrence_at) constraint makes a repeat a no-op.
    """
    now = now or dj_timezone.now()
    batch_size = batch_size or conf.get("RECURRING_BATCH_SIZE")
    max_templates = max_templates or conf.get("RECURRING_MAX_TEMPLATES_PER_RUN")
    cap = conf.get("RECURRING_CATCH_UP_CAP")
    report = {"templates": 0, "created": 0, "skipped": 0, "batches": 0}
    while report["templates"] < max_templates:
        n, created, skipped = _process_batch(now=now, batch_size=min(batch_size, max_templates - report["templates"]),
                                             cap=cap)
        if not n:
            break
        report["templates"] += n
        report["created"] += created
        report["skipped"] += skipped
        report["batches"] += 1
    return report


def _recurring_instance_closed(*, task):
    """after_completion mode: the next occurrence counts from this instance's completion."""
    template = RecurringTaskTemplate.objects.select_for_update().filter(
        pk=task.recurring_template_id, mode=RecurrenceMode.AFTER_COMPLETION, enabled=True).first()
    if template is None or template.next_occurrence_at is not None or _has_open_instance(template):
        return
    schedule = Schedule.for_template(template)
    _set_next(template, _after_completion_next(template, schedule, task.completed_at or dj_timezone.now()))
    template.save(update_fields=["next_occurrence_at", "next_run_at", "updated_at"])


def recurring_cleanup_completed(*, now=None, older_than=None, batch_size=None):
    """Delete done instances completed before the cutoff, batch by batch.

    Each template counts what was removed (instances_cleaned), so its history count (cleaned + done
    instances still present) stays right. Retention deletes send no task_deleted event.
    """
    now = now or dj_timezone.now()
    cutoff = now - (older_than if older_than is not None
                    else timedelta(days=conf.get("RECURRING_CLEANUP_AFTER_DAYS")))
    batch_size = batch_size or conf.get("RECURRING_CLEANUP_BATCH")
    total = 0
    while True:
        with transaction.atomic():
            rows = list(Task.objects.select_for_update(skip_locked=True)
                        .filter(recurring_template__isnull=False, status=Status.DONE, completed_at__lt=cutoff)
                        .order_by("completed_at", "id").values_list("id", "recurring_template_id")[:batch_size])
            if not rows:
                break
            per_template = collections.Counter(template_id for _, template_id in rows)
            Task.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
            RecurringTaskTemplate.objects.filter(pk__in=per_template).update(
                instances_cleaned=F("instances_cleaned") + Case(
                    *[When(pk=pk, then=Value(n)) for pk, n in per_template.items()],
                    default=Value(0), output_field=models.PositiveIntegerField()),
            )
            total += len(rows)
    return {"deleted": total}


class RecurrenceService:
    """The spec's RecurrenceService: queue the periodic run, plus the checks and creation it uses."""

    @staticmethod
    def process_recurring_tasks():
        enqueue_on_commit("recurring.process_recurring_tasks")

    due_templates = staticmethod(recurring_due_templates)
    process_due = staticmethod(recurring_process_due)
    create_instance = staticmethod(recurring_instance_create)
    apply_template_changes = staticmethod(recurring_template_apply)
    cleanup_completed = staticmethod(recurring_cleanup_completed)


# --- reminders and summaries (tasks_app/reminders.py, tasks_app/summaries.py) ---
reminder_create = reminders.reminder_create
reminder_update = reminders.reminder_update
reminder_delete = reminders.reminder_delete
reminders_claim_due = reminders.reminders_claim_due
reminder_send = reminders.reminder_send
daily_summaries_send = summaries.daily_summaries_send
weekly_reports_send = summaries.weekly_reports_send


class ReminderService:
    """The spec's reminders module: the sweep, one reminder, the daily summary and the weekly report."""

    @staticmethod
    def process_pending_reminders():
        enqueue_on_commit("reminders.send_reminder_notifications")

    create = staticmethod(reminder_create)
    update = staticmethod(reminder_update)
    delete = staticmethod(reminder_delete)
    claim_due = staticmethod(reminders_claim_due)
    send = staticmethod(reminder_send)
    send_daily_summaries = staticmethod(daily_summaries_send)
    send_weekly_reports = staticmethod(weekly_reports_send)
