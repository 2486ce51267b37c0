"""Writes and business rules for projects, members, tasks and comments.

Every service is atomic: bad input raises ApplicationError before or instead of a partial write.
Domain events (tasks_app.signals) are sent inside the transaction so the side-effect rows other
apps write commit together with the change.
"""

from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError, Conflict, Forbidden
from tasks_app import signals
from tasks_app.models import ROLE_RANK, Comment, Membership, Profile, Project, Role, Status, Task
from tasks_app.permissions import has_role, project_role, require_role

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
    task.version += 1
    task.save()

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
