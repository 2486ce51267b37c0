"""Tasks: create, update (with its domain events), move on the board, assign, delete.

A change to a recurring instance is recorded in Task.edited_fields so later template changes leave
it alone; closing or deleting an after_completion instance schedules the series' next one.
Subtask rules live in subtasks.py, labels in labels.py, board ranks in positions.py; every change
writes its event (events.py) and refreshes the search document (search.py) in this transaction.
"""

from django.db import transaction
from django.utils import timezone

from core.conditional import PreconditionFailed
from core.exceptions import Forbidden
from tasks_app import signals
from tasks_app.models import Role, Status, Task
from tasks_app.permissions import has_role, require_role, require_writable, validate_assignee
from tasks_app.recurring.engine import TEMPLATE_TASK_FIELDS, recurring_instance_closed
from tasks_app.services import positions
from tasks_app.services.events import event_record
from tasks_app.services.labels import task_labels_set
from tasks_app.services.search import search_reindex
from tasks_app.services.subtasks import (
    descendant_levels,
    refuse_done_with_open_subtasks,
    validate_parent,
    validate_parent_for_create,
)
from tasks_app.signals import json_value

TASK_EDITABLE_FIELDS = ("title", "description", "status", "priority", "assignee", "due_at", "parent")
_FK_FIELDS = ("assignee", "parent")


@transaction.atomic
def task_create(
    *,
    actor,
    project,
    title,
    description="",
    status=Status.TODO,
    priority=2,
    assignee=None,
    due_at=None,
    parent=None,
    labels=None,
    check_permission=True,
    **extra,
):
    """check_permission=False: staff in Django admin (not necessarily members), like task_update's."""
    if check_permission:
        require_role(user=actor, project=project, minimum=Role.MEMBER, action="create tasks")
        require_writable(project)
    validate_assignee(project=project, assignee=assignee)
    validate_parent_for_create(project=project, parent=parent)
    now = timezone.now()
    task = Task.objects.create(
        project=project,
        title=title,
        description=description,
        status=status,
        priority=priority,
        assignee=assignee,
        created_by=actor,
        due_at=due_at,
        parent=parent,
        position=positions.position_at_end(project_id=project.pk, status=status),
        completed_at=now if status == Status.DONE else None,
        **extra,
    )
    positions.position_check_length(task=task)
    event_record(type="task.created", project_id=project.pk, task_id=task.pk, actor=actor, data=task_snapshot(task))
    if parent is not None:
        _subtask_event(parent.pk, task, actor, "subtask.added")
    if labels:
        task_labels_set(task=task, actor=actor, label_ids=[getattr(label, "pk", label) for label in labels])
    search_reindex(task_ids=[task.pk])
    signals.task_created.send(sender=Task, task=task, actor=actor)
    if assignee is not None:
        signals.task_assigned.send(sender=Task, task=task, actor=actor, previous_assignee_id=None)
    if status == Status.DONE:
        signals.task_completed.send(sender=Task, task=task, actor=actor)
    return task


def _subtask_event(parent_id, task, actor, kind):
    event_record(
        type=kind,
        project_id=task.project_id,
        task_id=parent_id,
        actor=actor,
        data={"subtask": task.pk, "title": task.title},
    )


def task_snapshot(task):
    """The task's own fields as JSON-ready values, for the task.created / task.deleted events."""
    return {
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "assignee": task.assignee_id,
        "due_at": json_value(task.due_at),
        "parent": task.parent_id,
        "recurring_template": task.recurring_template_id,
    }


def _apply_changes(task, data):
    """Set the fields of `data` that differ; returns {field: [old, new]} with JSON-ready values."""
    changes = {}
    for field in TASK_EDITABLE_FIELDS:
        if field not in data:
            continue
        attr = f"{field}_id" if field in _FK_FIELDS else field
        old = getattr(task, attr)
        new = data[field].pk if field in _FK_FIELDS and data[field] is not None else data[field]
        if old != new:
            changes[field] = [json_value(old), json_value(new)]
            setattr(task, attr, new)
    if "status" in changes:
        previous_completed_at = task.completed_at
        task.completed_at = timezone.now() if task.status == Status.DONE else None
        if previous_completed_at != task.completed_at:
            changes["completed_at"] = [json_value(previous_completed_at), json_value(task.completed_at)]
    return changes


def _require_version(task, expected_version):
    """Lost-update guard: compared under the row lock, so of two writers holding one version only the first wins."""
    if expected_version is not None and task.version != expected_version:
        raise PreconditionFailed(etag=f'"v{task.version}"')


@transaction.atomic
def task_update(*, task, actor, data, check_permission=True, expected_version=None):
    """Apply `data` (a subset of TASK_EDITABLE_FIELDS, plus `labels`: label ids replacing the set).

    Returns the task; writes an event and sends signals for real changes. `expected_version` (from the
    request's If-Match): the update happens only if the task is still at that version (checked under the lock).
    """
    task = Task.objects.select_for_update().select_related("project").get(pk=task.pk)
    _require_version(task, expected_version)
    if check_permission:
        require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="edit tasks")
        require_writable(task.project)
    if "assignee" in data:
        validate_assignee(project=task.project, assignee=data["assignee"])
    if "parent" in data and getattr(data["parent"], "pk", None) != task.parent_id:
        validate_parent(task=task, parent=data["parent"])
    if data.get("status") == Status.DONE and task.status != Status.DONE:
        refuse_done_with_open_subtasks(task=task)
    labels_changed = False
    if "labels" in data:
        added, removed = task_labels_set(
            task=task, actor=actor, label_ids=[getattr(label, "pk", label) for label in data["labels"]]
        )
        labels_changed = bool(added or removed)
    changes = _apply_changes(task, data)
    if not changes:
        if labels_changed:
            task.version += 1
            task.save(update_fields=["version", "updated_at"])
        return task
    if "status" in changes and "position" not in data:
        task.position = positions.position_at_end(project_id=task.project_id, status=task.status, exclude_id=task.pk)
        positions.position_check_length(task=task)
    became_done = "status" in changes and task.status == Status.DONE
    if task.recurring_template_id:
        # Template updates leave fields a user changed on this instance alone.
        edited = set(task.edited_fields) | {f for f in changes if f in (*TEMPLATE_TASK_FIELDS, "due_at")}
        task.edited_fields = sorted(edited)
    task.version += 1
    task.save()

    if task.recurring_template_id and "status" in changes and task.status in (Status.DONE, Status.CANCELLED):
        recurring_instance_closed(task=task)
    event_record(
        type="task.updated", project_id=task.project_id, task_id=task.pk, actor=actor, data={"changes": changes}
    )
    if "parent" in changes:
        old_parent, new_parent = changes["parent"]
        if old_parent is not None:
            _subtask_event(old_parent, task, actor, "subtask.removed")
        if new_parent is not None:
            _subtask_event(new_parent, task, actor, "subtask.added")
    if "title" in changes or "description" in changes:
        search_reindex(task_ids=[task.pk])
    signals.task_updated.send(sender=Task, task=task, actor=actor, changes=changes)
    if "assignee" in changes:
        signals.task_assigned.send(sender=Task, task=task, actor=actor, previous_assignee_id=changes["assignee"][0])
    if became_done:
        signals.task_completed.send(sender=Task, task=task, actor=actor)
    return task


@transaction.atomic
def task_move(*, task, actor, status=None, after=None, before=None):
    """Put a card on the board: optionally into another status column, between two neighbours (ids).

    One row written (plus the status change's own effects when the column changes).
    """
    if status is not None and status != task.status:
        task = task_update(task=task, actor=actor, data={"status": status})
    task = Task.objects.select_for_update().select_related("project").get(pk=task.pk)
    require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="move tasks")
    require_writable(task.project)
    new = positions.position_between(task=task, after_id=after, before_id=before)
    if new != task.position:
        old = task.position
        task.position = new
        task.version += 1
        task.save(update_fields=["position", "version", "updated_at"])
        changes = {"position": [old, new]}
        event_record(
            type="task.updated", project_id=task.project_id, task_id=task.pk, actor=actor, data={"changes": changes}
        )
        signals.task_updated.send(sender=Task, task=task, actor=actor, changes=changes)
        positions.position_check_length(task=task)
    return task


def task_assign(*, task, actor, assignee):
    return task_update(task=task, actor=actor, data={"assignee": assignee})


@transaction.atomic
def task_delete(*, task, actor, check_permission=True, expected_version=None):
    """Members delete tasks they created; admins and the owner delete any (check_permission=False: staff
    in Django admin).

    The task's subtasks (its whole subtree) are deleted with it, deepest first, each with its event.
    """
    if expected_version is not None:
        _require_version(Task.objects.select_for_update().get(pk=task.pk), expected_version)
    if check_permission:
        if not has_role(user=actor, project=task.project, minimum=Role.ADMIN):
            require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="delete tasks")
            if task.created_by_id != actor.pk:
                raise Forbidden("Only the task's creator or a project admin can delete it.", code="permission_denied")
        require_writable(task.project)
    for level in reversed(descendant_levels(task.pk)):
        for subtask in Task.objects.filter(pk__in=level).select_related("project"):
            _delete_one(subtask, actor)
    _delete_one(task, actor)


def _delete_one(task, actor):
    task_id = task.pk
    task.delete()
    task.pk = task_id
    if task.recurring_template_id:
        recurring_instance_closed(task=task)  # an after_completion series must not stall on a deleted instance
    event_record(
        type="task.deleted", project_id=task.project_id, task_id=task_id, actor=actor, data=task_snapshot(task)
    )
    signals.task_deleted.send(sender=Task, task=task, task_id=task_id, actor=actor)
