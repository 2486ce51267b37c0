"""Reads for accounts: a user's tokens, and the users a user may look up."""

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import digest
from core.exceptions import NotFound

User = get_user_model()


def api_token_list(*, user):
    return ApiToken.objects.filter(user=user)


def api_token_get(*, user, token_id):
    token = api_token_list(user=user).filter(pk=token_id).first()
    if token is None:
        raise NotFound("Token not found.")
    return token


def api_token_authenticate(*, key):
    """The live token for a key, or None (unknown, expired, or the user is inactive)."""
    token = ApiToken.objects.select_related("user").filter(digest=digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return None
    return token


def user_lookup_list(*, user, search=None):
    """Users who share a project with `user` (and `user`), optionally narrowed by a username/name prefix.

    Nobody else is listed, and nothing about them is answered, so the lookup cannot be used to find out who has an
    account. (Adding a member by exact username or email is the way to reach someone new.)"""
    from tasks_app.models import Membership

    mine = Membership.objects.filter(user=user).values("project_id")
    qs = User.objects.filter(Q(pk=user.pk) | Q(memberships__project_id__in=mine), is_active=True).distinct()
    if search:
        qs = qs.filter(
            Q(username__istartswith=search) | Q(first_name__istartswith=search) | Q(last_name__istartswith=search)
        )
    return qs.order_by("username", "id")
