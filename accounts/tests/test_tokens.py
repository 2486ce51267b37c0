"""API tokens: hashed at rest, several named per user, expiring, revocable, listed without their key; the
`Authorization: Token` scheme unchanged; DRF tokens migrated so their keys keep working; none shown in admin."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as global_apps
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.tokens import digest
from tests.support.api import api_error_codes

LOGIN = "/api/v1/auth/token/"
TOKENS = "/api/v1/auth/tokens/"


def login(user, password="pw-123456"):
    return APIClient().post(LOGIN, {"username": user.username, "password": password}, format="json")


def with_key(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_login_gives_a_working_key_that_is_stored_only_as_a_digest(cast):
    r = login(cast.member)
    assert r.status_code == 200, r.content
    key = r.json()["token"]
    assert key.startswith("tm_") and len(key) >= 40
    assert with_key(key).get("/api/v1/me/").json()["username"] == "member"
    row = ApiToken.objects.get(pk=r.json()["id"])
    assert row.digest == digest(key) and key not in {row.digest, row.prefix, row.name}
    assert not ApiToken.objects.filter(digest=key).exists()
    assert row.expires_at is not None and row.expires_at > timezone.now() + timedelta(days=89)


def test_wrong_password_is_a_400_in_the_envelope(cast):
    r = login(cast.member, password="nope")
    assert r.status_code == 400 and api_error_codes(r) == {None: ["invalid_credentials"]}


def test_several_named_tokens_listed_without_their_key_and_revocable(cast):
    first = with_key(login(cast.member).json()["token"])
    r = first.post(TOKENS, {"name": "ci", "expires_in_days": 7}, format="json")
    assert r.status_code == 201, r.content
    ci_key, ci_id = r.json()["token"], r.json()["id"]
    listing = first.get(TOKENS).json()
    assert [t["name"] for t in listing["results"]] == ["ci", "login"]
    assert all("token" not in t and ci_key not in str(t) for t in listing["results"])
    assert first.get(f"{TOKENS}{ci_id}/").json()["prefix"] == ci_key[:8]
    assert with_key(ci_key).get("/api/v1/me/").status_code == 200
    assert first.delete(f"{TOKENS}{ci_id}/").status_code == 204
    assert with_key(ci_key).get("/api/v1/me/").status_code == 401
    assert first.get("/api/v1/me/").status_code == 200  # the other token is untouched


def test_others_tokens_are_invisible(cast):
    owner = with_key(login(cast.owner).json()["token"])
    member_token = login(cast.member).json()["id"]
    assert owner.get(f"{TOKENS}{member_token}/").status_code == 404
    assert owner.delete(f"{TOKENS}{member_token}/").status_code == 404
    assert [t["id"] for t in owner.get(TOKENS).json()["results"]] != [member_token]


def test_expired_token_is_refused(cast):
    key = login(cast.member).json()["token"]
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    r = with_key(key).get("/api/v1/me/")
    assert r.status_code == 401 and r["WWW-Authenticate"] == "Token"


def test_a_token_without_expiry_can_be_asked_for(cast):
    client = with_key(login(cast.member).json()["token"])
    r = client.post(TOKENS, {"name": "forever", "expires_in_days": None}, format="json")
    assert r.status_code == 201 and r.json()["expires_at"] is None


def test_inactive_user_token_is_refused(cast):
    key = login(cast.member).json()["token"]
    cast.member.is_active = False
    cast.member.save()
    assert with_key(key).get("/api/v1/me/").status_code == 401


def test_migration_hashes_existing_drf_tokens_and_their_keys_keep_working(cast):
    from rest_framework.authtoken.models import Token

    old = Token.objects.create(user=cast.viewer)
    migration = importlib.import_module("accounts.migrations.0002_hash_drf_tokens")
    migration.hash_existing_tokens(global_apps, None)
    assert not Token.objects.exists()  # no key left in clear
    row = ApiToken.objects.get(user=cast.viewer)
    assert (row.name, row.expires_at, row.digest) == ("migrated", None, digest(old.key))
    assert with_key(old.key).get("/api/v1/me/").json()["username"] == "viewer"


def test_admin_never_shows_a_key(cast, client):
    from django.contrib import admin
    from rest_framework.authtoken.models import Token, TokenProxy

    assert not admin.site.is_registered(Token) and not admin.site.is_registered(TokenProxy)
    key = login(cast.member).json()["token"]
    cast.staff.is_superuser = True
    cast.staff.save()
    client.force_login(cast.staff)
    page = client.get("/admin/accounts/apitoken/")
    assert page.status_code == 200 and b"login" in page.content
    detail = client.get(f"/admin/accounts/apitoken/{ApiToken.objects.get().pk}/change/")
    assert detail.status_code == 200
    for body in (page.content, detail.content):
        assert key.encode() not in body and digest(key).encode() not in body
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x", "expires_in_days": 0}])
def test_bad_token_requests_are_field_400s(cast, body):
    client = with_key(login(cast.member).json()["token"])
    r = client.post(TOKENS, body, format="json")
    assert r.status_code == 400 and set(api_error_codes(r)) <= {"name", "expires_in_days"}
