"""Receivers for tasks_app domain events: each writes deliveries in the event's own transaction."""

from tasks_app import signals
from webhooks.models import Event
from webhooks.services import trigger_webhook, trigger_webhooks


def task_data(task):
    return {
        "id": task.pk,
        "project": task.project_id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": task.priority,
        "assignee": task.assignee_id,
        "created_by": task.created_by_id,
        "parent": task.parent_id,
        "position": task.position,
        "due_at": task.due_at,
        "completed_at": task.completed_at,
        "version": task.version,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _actor(actor):
    return getattr(actor, "pk", None)


def on_task_created(sender, task, actor=None, **kw):
    trigger_webhook(
        project_id=task.project_id,
        event_type=Event.TASK_CREATED,
        data={"task": task_data(task), "actor": _actor(actor)},
    )


def on_task_updated(sender, task, changes, actor=None, **kw):
    trigger_webhook(
        project_id=task.project_id,
        event_type=Event.TASK_UPDATED,
        data={"task": task_data(task), "changes": changes, "actor": _actor(actor)},
    )


def on_task_assigned(sender, task, actor=None, previous_assignee_id=None, **kw):
    trigger_webhook(
        project_id=task.project_id,
        event_type=Event.TASK_ASSIGNED,
        data={"task": task_data(task), "previous_assignee": previous_assignee_id, "actor": _actor(actor)},
    )


def on_task_completed(sender, task, actor=None, **kw):
    trigger_webhook(
        project_id=task.project_id,
        event_type=Event.TASK_COMPLETED,
        data={"task": task_data(task), "actor": _actor(actor)},
    )


def on_task_deleted(sender, task, task_id, actor=None, **kw):
    data = task_data(task)
    data["id"] = task_id
    trigger_webhook(
        project_id=task.project_id, event_type=Event.TASK_DELETED, data={"task": data, "actor": _actor(actor)}
    )


def on_comment_created(sender, comment, actor=None, **kw):
    task = comment.task
    trigger_webhook(
        project_id=task.project_id,
        event_type=Event.COMMENT_CREATED,
        data={
            "comment": {
                "id": comment.pk,
                "task": task.pk,
                "author": comment.author_id,
                "body": comment.body,
                "created_at": comment.created_at,
            },
            "task": task_data(task),
            "actor": _actor(actor),
        },
    )


def _comment(comment, task_id):
    return {"id": comment.pk, "task": task_id, "author": comment.author_id, "body": comment.body}


def on_comment_updated(sender, comment, actor=None, previous_body=None, **kw):
    trigger_webhook(
        project_id=comment.task.project_id,
        event_type=Event.COMMENT_UPDATED,
        data={
            "comment": _comment(comment, comment.task_id),
            "changes": {"body": [previous_body, comment.body]},
            "actor": _actor(actor),
        },
    )


def on_comment_deleted(sender, comment, task, actor=None, **kw):
    trigger_webhook(
        project_id=task.project_id,
        event_type=Event.COMMENT_DELETED,
        data={"comment": _comment(comment, task.pk), "actor": _actor(actor)},
    )


def on_label_changed(sender, label, action, changes, actor=None, **kw):
    trigger_webhook(
        project_id=label.project_id,
        event_type=f"label.{action}",
        data={
            "label": {"id": label.pk, "name": label.name, "color": label.color},
            "changes": changes,
            "actor": _actor(actor),
        },
    )


def on_task_labels_changed(sender, task, added, removed, actor=None, **kw):
    trigger_webhook(
        project_id=task.project_id,
        event_type=Event.TASK_LABELS_CHANGED,
        data={"task": task.pk, "added": added, "removed": removed, "actor": _actor(actor)},
    )


def on_relation_changed(sender, relation, action, actor=None, **kw):
    data = {
        "relation": {
            "id": relation.pk,
            "type": relation.type,
            "source": relation.source_id,
            "target": relation.target_id,
        },
        "actor": _actor(actor),
    }
    project_ids = {relation.source.project_id, relation.target.project_id}
    for project_id in sorted(project_ids):  # each end's project hears about it once
        trigger_webhook(project_id=project_id, event_type=f"relation.{action}", data=data)


def _subtask(task, parent_id, event_type, actor):
    trigger_webhook(
        project_id=task.project_id,
        event_type=event_type,
        data={"parent": parent_id, "subtask": task.pk, "title": task.title, "actor": _actor(actor)},
    )


def on_task_created_subtask(sender, task, actor=None, **kw):
    if task.parent_id is not None:
        _subtask(task, task.parent_id, Event.SUBTASK_ADDED, actor)


def on_task_updated_subtask(sender, task, changes, actor=None, **kw):
    if "parent" in changes:
        old, new = changes["parent"]
        if old is not None:
            _subtask(task, old, Event.SUBTASK_REMOVED, actor)
        if new is not None:
            _subtask(task, new, Event.SUBTASK_ADDED, actor)


def on_membership_changed(sender, membership, action, changes, actor=None, **kw):
    trigger_webhook(
        project_id=membership.project_id,
        event_type=f"member.{action}",
        data={"user": membership.user_id, "role": membership.role, "changes": changes, "actor": _actor(actor)},
    )


def on_project_updated(sender, project, changes, actor=None, **kw):
    trigger_webhook(
        project_id=project.pk,
        event_type=Event.PROJECT_UPDATED,
        data={"project": {"id": project.pk, "name": project.name}, "changes": changes, "actor": _actor(actor)},
    )


def on_recurring_instances_created(sender, instances, project_ids=None, **kw):
    trigger_webhooks(
        event_type=Event.RECURRING_INSTANCE_CREATED,
        project_ids=project_ids,
        events=lambda: [
            (task.project_id, {"task": task_data(task), "template": task.recurring_template_id}) for task in instances
        ],
    )


def connect():
    pairs = [
        (signals.task_created, on_task_created),
        (signals.task_updated, on_task_updated),
        (signals.task_assigned, on_task_assigned),
        (signals.task_completed, on_task_completed),
        (signals.task_deleted, on_task_deleted),
        (signals.comment_created, on_comment_created),
        (signals.recurring_instances_created, on_recurring_instances_created),
        (signals.comment_updated, on_comment_updated),
        (signals.comment_deleted, on_comment_deleted),
        (signals.label_changed, on_label_changed),
        (signals.task_labels_changed, on_task_labels_changed),
        (signals.relation_changed, on_relation_changed),
        (signals.task_created, on_task_created_subtask),
        (signals.task_updated, on_task_updated_subtask),
        (signals.membership_changed, on_membership_changed),
        (signals.project_updated, on_project_updated),
    ]
    for signal, receiver in pairs:
        signal.connect(receiver, dispatch_uid=f"webhooks.{receiver.__name__}")
