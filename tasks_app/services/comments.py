"""Comments on tasks: members comment; authors edit their own; admins delete anyone's."""

from django.db import transaction

from core.exceptions import Forbidden
from tasks_app import signals
from tasks_app.models import Comment, Role
from tasks_app.permissions import require_role, require_writable
from tasks_app.services.events import event_record
from tasks_app.services.search import search_reindex


@transaction.atomic
def comment_create(*, task, actor, body):
    require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="comment")
    require_writable(task.project)
    comment = Comment.objects.create(task=task, author=actor, body=body)
    event_record(
        type="comment.created",
        project_id=task.project_id,
        task_id=task.pk,
        actor=actor,
        data={"comment": comment.pk, "body": body},
    )
    search_reindex(task_ids=[task.pk])
    signals.comment_created.send(sender=Comment, comment=comment, actor=actor)
    return comment


@transaction.atomic
def comment_update(*, comment, actor, body):
    if comment.author_id != actor.pk:
        raise Forbidden("Only the author can edit a comment.", code="permission_denied")
    require_role(user=actor, project=comment.task.project, minimum=Role.MEMBER, action="edit comments")
    require_writable(comment.task.project)
    previous = comment.body
    if previous == body:
        return comment
    comment.body = body
    comment.save(update_fields=["body", "updated_at"])
    event_record(
        type="comment.updated",
        project_id=comment.task.project_id,
        task_id=comment.task_id,
        actor=actor,
        data={"comment": comment.pk, "changes": {"body": [previous, body]}},
    )
    search_reindex(task_ids=[comment.task_id])
    signals.comment_updated.send(sender=Comment, comment=comment, actor=actor, previous_body=previous)
    return comment


@transaction.atomic
def comment_delete(*, comment, actor):
    project = comment.task.project
    if comment.author_id != actor.pk:
        require_role(user=actor, project=project, minimum=Role.ADMIN, action="delete others' comments")
    else:
        require_role(user=actor, project=project, minimum=Role.MEMBER, action="delete comments")
    require_writable(project)
    comment_id, task = comment.pk, comment.task
    comment.delete()
    comment.pk = comment_id
    event_record(
        type="comment.deleted",
        project_id=project.pk,
        task_id=task.pk,
        actor=actor,
        data={"comment": comment_id, "author": comment.author_id},
    )
    search_reindex(task_ids=[task.pk])
    signals.comment_deleted.send(sender=Comment, comment=comment, task=task, actor=actor)
