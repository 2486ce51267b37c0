"""Recurring task templates: create, update, pause, resume, delete, and applying changes to instances.

A change is saved with `apply_pending` set and `recurring.update_recurring_task_template` queued
on commit; `recurring_template_apply` (that task) re-times and updates the future instances.
"""

import itertools
from datetime import timedelta

from django.db import transaction
from django.utils import timezone as dj_timezone

from core.enqueue import enqueue_on_commit
from core.exceptions import Forbidden
from tasks_app import signals
from tasks_app.models import CatchUp, RecurrenceMode, RecurringTaskTemplate, Role, Status, Task
from tasks_app.permissions import has_role, require_role, require_writable, validate_assignee
from tasks_app.recurring.engine import TEMPLATE_TASK_FIELDS, has_open_instance, set_next, template_schedule
from tasks_app.services.events import event_record
from tasks_app.services.search import search_reindex
from tasks_app.signals import json_value

SCHEDULE_FIELDS = ("rrule", "dtstart", "timezone", "until", "count", "mode")
TEMPLATE_FIELDS = (*TEMPLATE_TASK_FIELDS, *SCHEDULE_FIELDS, "lead_time", "catch_up")


def _first_occurrence_from_now(template, schedule, now):
    """The next occurrence to create when (re)starting: at or after now, after the last one created."""
    if template.mode == RecurrenceMode.AFTER_COMPLETION and template.pk and has_open_instance(template):
        return None
    start = now if template.last_occurrence_at is None else max(now, template.last_occurrence_at)
    return schedule.next_after(start, inclusive=start != template.last_occurrence_at)


def recurring_template_schedule_from_now(*, template, now=None):
    """Point a new (or resumed) template at its first occurrence at or after now."""
    first = _first_occurrence_from_now(template, template_schedule(template), now or dj_timezone.now())
    set_next(template, first if template.enabled else None)


@transaction.atomic
def recurring_template_create(
    *,
    actor,
    project,
    title,
    rrule,
    dtstart,
    timezone="UTC",
    description="",
    priority=2,
    assignee=None,
    until=None,
    count=None,
    mode=RecurrenceMode.SCHEDULE,
    lead_time=timedelta(0),
    catch_up=CatchUp.ALL,
    enabled=True,
    now=None,
):
    require_role(user=actor, project=project, minimum=Role.MEMBER, action="create recurring tasks")
    require_writable(project)
    validate_assignee(project=project, assignee=assignee)
    template = RecurringTaskTemplate(
        project=project,
        title=title,
        description=description,
        priority=priority,
        assignee=assignee,
        created_by=actor,
        rrule=rrule,
        dtstart=dtstart,
        timezone=timezone,
        until=until,
        count=count,
        mode=mode,
        lead_time=lead_time,
        catch_up=catch_up,
        enabled=enabled,
    )
    schedule = template_schedule(template, check_repeats=True)
    if enabled:
        set_next(template, _first_occurrence_from_now(template, schedule, now or dj_timezone.now()))
    template.save()
    return template


@transaction.atomic
def recurring_template_update(*, template, actor, data):
    """Save template changes; `recurring.update_recurring_task_template` applies them to instances."""
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").get(pk=template.pk)
    require_role(user=actor, project=template.project, minimum=Role.MEMBER, action="edit recurring tasks")
    require_writable(template.project)
    if "assignee" in data:
        validate_assignee(project=template.project, assignee=data["assignee"])
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
    template_schedule(template, check_repeats=True)  # validates the new combination before anything is written
    return recurring_template_changed(template=template, changed=changed)


@transaction.atomic
def recurring_template_changed(*, template, changed):
    """Save a template whose `changed` fields were set (API or admin) and queue applying them."""
    if set(changed) & {*SCHEDULE_FIELDS, "enabled"} or not template.enabled:
        # Generation waits until the apply task has re-timed the future instances.
        set_next(template, None)
        template.reschedule_pending = True
    elif "lead_time" in changed:
        set_next(template, template.next_occurrence_at)
    template.apply_pending = True
    template.enqueued_at = dj_timezone.now()
    template.version += 1
    template.save()
    enqueue_on_commit("recurring.update_recurring_task_template", args=[template.pk])
    return template


def _copy_template_fields(template, future):
    """Copy title/description/priority/assignee onto each instance unless its user edited them.

    Returns {task pk: {field: [old, new]}}, to which re-timing adds due_at/occurrence_at.
    """
    changes = {task.pk: {} for task in future}
    for task in future:
        for field in TEMPLATE_TASK_FIELDS:
            attr = "assignee_id" if field == "assignee" else field
            if field in task.edited_fields or getattr(task, attr) == getattr(template, attr):
                continue
            changes[task.pk][field] = [getattr(task, attr), getattr(template, attr)]
            setattr(task, attr, getattr(template, attr))
    return changes


def _free_slots(template, schedule, future, now):
    """The new rule's next occurrences after now, one per future instance, skipping ones other
    instances (started or done) already hold."""
    taken = set(
        template.instances.exclude(pk__in=[t.pk for t in future])
        .filter(occurrence_at__gt=now)
        .values_list("occurrence_at", flat=True)
    )
    slots = []
    for occurrence in schedule.iter_from(now, inclusive=False):
        if len(slots) == len(future):
            break
        if occurrence not in taken:
            slots.append(occurrence)
    return slots


def _retime(template, schedule, future, changes, now):
    """Move the future instances, in order, onto the new rule's slots. Returns (to delete, last slot).

    Instances left without a slot are deleted unless a user edited them (then they keep no occurrence).
    """
    slots = _free_slots(template, schedule, future, now)
    # Clear first, so moving one instance onto another's old occurrence cannot hit the unique constraint.
    Task.objects.filter(pk__in=[t.pk for t in future]).update(occurrence_at=None)
    deleted = []
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
    return deleted, slots[-1] if slots else None


def _reschedule_next(template, schedule, last, now):
    if not template.enabled:
        set_next(template, None)
    elif template.mode == RecurrenceMode.AFTER_COMPLETION:
        set_next(template, None if has_open_instance(template) else schedule.next_after(now, inclusive=True))
    elif last is not None:
        set_next(template, schedule.next_after(last))
    else:
        set_next(template, schedule.next_after(now, inclusive=True))


def _save_instances(future, changes, deleted, *, reset):
    """Save changed instances (one task_updated each) and delete the slot-less ones. Returns the updated count."""
    updated = 0
    for task in future:
        if task in deleted:
            continue
        if not changes[task.pk]:
            if reset:
                task.save(update_fields=["occurrence_at"])  # put back after the reset in _retime
            continue
        task.version += 1
        task.save()
        updated += 1
        json_changes = {k: [json_value(a), json_value(b)] for k, (a, b) in changes[task.pk].items()}
        event_record(type="task.updated", project_id=task.project_id, task_id=task.pk, data={"changes": json_changes})
        if "title" in json_changes or "description" in json_changes:
            search_reindex(task_ids=[task.pk])
        signals.task_updated.send(sender=Task, task=task, actor=None, changes=json_changes)
    for task in deleted:
        task_id = task.pk
        task.delete()
        task.pk = task_id
        event_record(type="task.deleted", project_id=task.project_id, task_id=task_id, data={"title": task.title})
        signals.task_deleted.send(sender=Task, task=task, task_id=task_id, actor=None)
    return updated


@transaction.atomic
def recurring_template_apply(*, template_id, now=None):
    """Apply a template's changes to its future, not-started instances. Idempotent.

    Each of title/description/priority/assignee is copied unless the user edited it on that
    instance. After a schedule change the future instances are re-timed, in order, onto the new
    rule's next occurrences (due_at follows unless the user edited it); instances the new rule has
    no room for are deleted, or kept without an occurrence if a user edited them.
    """
    template = (
        RecurringTaskTemplate.objects.select_for_update().select_related("project").filter(pk=template_id).first()
    )
    if template is None or not template.apply_pending:
        return {"template": template_id, "updated": 0, "deleted": 0}
    now = now or dj_timezone.now()
    future = list(
        Task.objects.select_for_update()
        .filter(recurring_template=template, status=Status.TODO, occurrence_at__gt=now)
        .order_by("occurrence_at")
    )
    changes = _copy_template_fields(template, future)
    schedule = template_schedule(template)
    deleted, reset = [], False
    if template.reschedule_pending:
        last = None
        if template.mode == RecurrenceMode.SCHEDULE and future:
            deleted, last = _retime(template, schedule, future, changes, now)
            reset = True
        _reschedule_next(template, schedule, last, now)
    updated = _save_instances(future, changes, deleted, reset=reset)
    template.apply_pending = False
    template.reschedule_pending = False
    template.save(
        update_fields=["apply_pending", "reschedule_pending", "next_occurrence_at", "next_run_at", "updated_at"]
    )
    return {"template": template.pk, "updated": updated, "deleted": len(deleted)}


@transaction.atomic
def recurring_template_pause(*, template, actor):
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").get(pk=template.pk)
    require_role(user=actor, project=template.project, minimum=Role.MEMBER, action="pause recurring tasks")
    if template.enabled:
        template.enabled = False
        set_next(template, None)
        template.save(update_fields=["enabled", "next_occurrence_at", "next_run_at", "updated_at"])
    return template


@transaction.atomic
def recurring_template_resume(*, template, actor, now=None):
    """Resume from now on: occurrences that fell in the pause are not created."""
    template = RecurringTaskTemplate.objects.select_for_update().select_related("project").get(pk=template.pk)
    require_role(user=actor, project=template.project, minimum=Role.MEMBER, action="resume recurring tasks")
    require_writable(template.project)
    if not template.enabled:
        template.enabled = True
        set_next(template, _first_occurrence_from_now(template, template_schedule(template), now or dj_timezone.now()))
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
