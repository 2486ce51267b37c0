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
        "due_at": task.due_at,
        "completed_at": task.completed_at,
        "version": task.version,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _actor(actor):
    return getattr(actor, "pk", None)


def on_task_created(sender, task, actor=None, **kw):
    trigger_webhook(project_id=task.project_id, event_type=Event.TASK_CREATED,
                    data={"task": task_data(task), "actor": _actor(actor)})


def on_task_updated(sender, task, changes, actor=None, **kw):
    trigger_webhook(project_id=task.project_id, event_type=Event.TASK_UPDATED,
                    data={"task": task_data(task), "changes": changes, "actor": _actor(actor)})


def on_task_assigned(sender, task, actor=None, previous_assignee_id=None, **kw):
    trigger_webhook(project_id=task.project_id, event_type=Event.TASK_ASSIGNED,
                    data={"task": task_data(task), "previous_assignee": previous_assignee_id, "actor": _actor(actor)})


def on_task_completed(sender, task, actor=None, **kw):
    trigger_webhook(project_id=task.project_id, event_type=Event.TASK_COMPLETED,
                    data={"task": task_data(task), "actor": _actor(actor)})


def on_task_deleted(sender, task, task_id, actor=None, payload=None, **kw):
    data = task_data(task)
    data["id"] = task_id
    trigger_webhook(project_id=task.project_id, event_type=Event.TASK_DELETED,
                    data={"task": data, "actor": _actor(actor)})


def on_comment_created(sender, comment, actor=None, **kw):
    task = comment.task
    trigger_webhook(project_id=task.project_id, event_type=Event.COMMENT_CREATED, data={
        "comment": {"id": comment.pk, "task": task.pk, "author": comment.author_id, "body": comment.body,
                    "created_at": comment.created_at},
        "task": task_data(task),
        "actor": _actor(actor),
    })


def on_recurring_instances_created(sender, instances, **kw):
    trigger_webhooks(event_type=Event.RECURRING_INSTANCE_CREATED, events=[
        (task.project_id, {"task": task_data(task), "template": task.recurring_template_id}) for task in instances
    ])


def connect():
    pairs = [
        (signals.task_created, on_task_created),
        (signals.task_updated, on_task_updated),
        (signals.task_assigned, on_task_assigned),
        (signals.task_completed, on_task_completed),
        (signals.task_deleted, on_task_deleted),
        (signals.comment_created, on_comment_created),
        (signals.recurring_instances_created, on_recurring_instances_created),
    ]
    for signal, receiver in pairs:
        signal.connect(receiver, dispatch_uid=f"webhooks.{receiver.__name__}")
