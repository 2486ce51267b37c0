"""Project roles: who may do what. Services call these; selectors hide what a user may not see."""

from core.exceptions import Forbidden
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
