"""Projects and their members. Removing or demoting a member unassigns their tasks and templates."""

from django.db import transaction

from core.exceptions import ApplicationError, Conflict, Forbidden
from tasks_app import signals
from tasks_app.models import ROLE_RANK, Membership, Project, RecurringTaskTemplate, Role, Task
from tasks_app.permissions import ASSIGNABLE_ROLES, project_role, require_role
from tasks_app.services.events import event_record
from tasks_app.services.tasks import task_update


@transaction.atomic
def project_create(*, actor, name, description=""):
    project = Project.objects.create(name=name, description=description, owner=actor)
    Membership.objects.create(project=project, user=actor, role=Role.OWNER)
    event_record(type="project.created", project_id=project.pk, actor=actor, data={"name": name})
    return project


@transaction.atomic
def project_update(*, project, actor, data):
    require_role(user=actor, project=project, minimum=Role.ADMIN, action="change the project")
    changes = {}
    for field in ("name", "description", "archived"):
        if field in data and getattr(project, field) != data[field]:
            changes[field] = [getattr(project, field), data[field]]
            setattr(project, field, data[field])
    if changes:
        project.save(update_fields=[*changes, "updated_at"])
        event_record(type="project.updated", project_id=project.pk, actor=actor, data={"changes": changes})
        signals.project_updated.send(sender=Project, project=project, actor=actor, changes=changes)
    return project


@transaction.atomic
def project_delete(*, project, actor):
    require_role(user=actor, project=project, minimum=Role.OWNER, action="delete the project")
    project.delete()


def _require_manage_member(*, actor, project, target_role):
    """Owner manages everyone; admins manage members and viewers only. Nobody grants 'owner'."""
    require_role(user=actor, project=project, minimum=Role.ADMIN, action="manage members")
    if target_role == Role.OWNER:
        raise ApplicationError(
            "The owner role cannot be granted or changed here.", fields={"role": "Cannot be 'owner'."}
        )
    if ROLE_RANK[target_role] >= ROLE_RANK[Role.ADMIN] and project_role(user=actor, project=project) != Role.OWNER:
        raise Forbidden("Only the project owner can manage admins.", code="permission_denied")


@transaction.atomic
def membership_add(*, project, actor, user, role=Role.MEMBER):
    _require_manage_member(actor=actor, project=project, target_role=role)
    if Membership.objects.filter(project=project, user=user).exists():
        raise Conflict(
            "This user is already a member.",
            fields={"user": "Already a member of this project."},
            code="already_member",
        )
    membership = Membership.objects.create(project=project, user=user, role=role)
    _member_event(membership, actor, "added", {"role": [None, role]})
    return membership


def _member_event(membership, actor, action, changes):
    event_record(
        type=f"member.{action}",
        project_id=membership.project_id,
        actor=actor,
        data={"user": membership.user_id, "changes": changes},
    )
    signals.membership_changed.send(
        sender=Membership, membership=membership, actor=actor, action=action, changes=changes
    )


@transaction.atomic
def membership_update(*, membership, actor, role):
    _require_manage_member(actor=actor, project=membership.project, target_role=membership.role)
    _require_manage_member(actor=actor, project=membership.project, target_role=role)
    previous = membership.role
    if previous == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    _member_event(membership, actor, "updated", {"role": [previous, role]})
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
    _member_event(membership, actor, "removed", {"role": [membership.role, None]})


def _unassign_member(*, membership, actor):
    RecurringTaskTemplate.objects.filter(project=membership.project, assignee=membership.user).update(assignee=None)
    for task in Task.objects.filter(project=membership.project, assignee=membership.user).select_for_update():
        task_update(task=task, actor=actor, data={"assignee": None}, check_permission=False)
