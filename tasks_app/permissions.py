"""Project roles: who may do what (and who may be assigned, and when a project is read-only).

Services call these; selectors hide what a user may not see.
"""

from core.exceptions import ApplicationError, Conflict, Forbidden
from tasks_app.models import ROLE_RANK, Membership, Role


def project_role(*, user, project):
    """The user's role in the project, or None. Staff act with owner rights on every project."""
    if not user or not user.is_authenticated:
        return None
    if user.is_staff:
        return Role.OWNER
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def has_role(*, user, project, minimum):
    role = project_role(user=user, project=project)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def require_role(*, user, project, minimum, action="do this"):
    if not has_role(user=user, project=project, minimum=minimum):
        raise Forbidden(f"You need the {minimum} role or higher in this project to {action}.", code="permission_denied")


ASSIGNABLE_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER)


def require_writable(project):
    if project.archived:
        raise Conflict("The project is archived; unarchive it to change its tasks.", code="archived")


def validate_assignee(*, project, assignee):
    """Only members who may edit (not viewers) can be assigned; None unassigns."""
    if assignee is None:
        return
    role = Membership.objects.filter(project=project, user=assignee).values_list("role", flat=True).first()
    if role is None:
        raise ApplicationError(
            "The assignee must be a member of the project.",
            fields={"assignee": "This user is not a member of the project."},
        )
    if role not in ASSIGNABLE_ROLES:
        raise ApplicationError(
            "Viewers cannot be assigned tasks.",
            fields={"assignee": "Viewers have read-only access and cannot be assigned."},
        )
