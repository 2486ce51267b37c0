"""Writes for accounts: API tokens."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts import conf
from accounts.models import ApiToken
from accounts.tokens import digest, display_prefix, new_key
from core.exceptions import ApplicationError


def api_token_create(*, user, name, expires_in=None):
    """Create a token; returns (token, key). The key is never stored, so this is the only time it is seen.

    expires_in: a timedelta, or None for conf.API_TOKEN_DEFAULT_TTL (None there: never expires)."""
    if expires_in is None:
        expires_in = conf.API_TOKEN_DEFAULT_TTL
    if user.api_tokens.count() >= conf.API_TOKEN_MAX_PER_USER:
        raise ApplicationError(
            f"At most {conf.API_TOKEN_MAX_PER_USER} tokens per user; revoke one first.",
            code="too_many_tokens",
            status=409,
        )
    key = new_key()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=display_prefix(key),
        digest=digest(key),
        expires_at=timezone.now() + expires_in if expires_in else None,
    )
    return token, key


def api_token_login(*, user, name="login"):
    """The token endpoint: a fresh token per login, expired ones of this user pruned in the same transaction."""
    with transaction.atomic():
        ApiToken.objects.filter(user=user, expires_at__lte=timezone.now()).delete()
        return api_token_create(user=user, name=name)


def api_token_revoke(*, token):
    token.delete()


def api_token_touch(*, token, now=None):
    """Record use at most once a minute (a write per request would be wasteful)."""
    now = now or timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
