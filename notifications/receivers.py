"""Receivers of tasks_app domain events. They run inside the service's transaction."""

from notifications import services


def on_task_assigned(sender, task, actor=None, previous_assignee_id=None, **kwargs):
    if task.assignee_id is not None and task.assignee_id != previous_assignee_id:
        services.notify_task_assigned(task=task, actor=actor)


def on_comment_created(sender, comment, actor=None, **kwargs):
    services.notify_comment_mention(comment=comment, actor=actor)


def on_comment_updated(sender, comment, actor=None, previous_body=None, **kwargs):
    services.notify_comment_mention(comment=comment, actor=actor, previous_body=previous_body or "")
