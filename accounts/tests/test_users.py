"""Finding people: members added by username or email; a lookup that lists only people you share a project with."""

import pytest

from tasks_app.models import Membership
from tasks_app.tests.factories import UserFactory
from tests.support.api import api_error_codes


@pytest.mark.parametrize("ref", ["newbie", "Newbie@Example.TEST", "id"])
def test_add_a_member_by_username_email_or_id(cast, api, ref):
    newbie = UserFactory(username="newbie", email="newbie@example.test")
    ref = newbie.pk if ref == "id" else ref
    r = api(cast.owner).post(f"/api/v1/projects/{cast.project.pk}/members/", {"user": ref}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["user"]["username"] == "newbie"
    assert Membership.objects.filter(project=cast.project, user=newbie).exists()


@pytest.mark.parametrize("ref", ["nobody", "nobody@example.test", 999999, True, "", None])
def test_unknown_or_malformed_user_is_a_field_400(cast, api, ref):
    r = api(cast.owner).post(f"/api/v1/projects/{cast.project.pk}/members/", {"user": ref}, format="json")
    assert r.status_code == 400 and set(api_error_codes(r)) == {"user"}


def test_inactive_user_cannot_be_added(cast, api):
    UserFactory(username="gone", is_active=False)
    r = api(cast.owner).post(f"/api/v1/projects/{cast.project.pk}/members/", {"user": "gone"}, format="json")
    assert api_error_codes(r) == {"user": ["does_not_exist"]}


def test_lookup_lists_only_people_sharing_a_project(cast, api):
    UserFactory(username="memberish-stranger")
    names = {u["username"] for u in api(cast.member).get("/api/v1/users/").json()["results"]}
    assert names == {"owner", "admin", "member", "viewer"}
    r = api(cast.member).get("/api/v1/users/?search=memb")
    assert [u["username"] for u in r.json()["results"]] == ["member"]
    outsider = {u["username"] for u in api(cast.outsider).get("/api/v1/users/").json()["results"]}
    assert outsider == {"outsider"}
    assert set(api(cast.member).get("/api/v1/users/").json()["results"][0]) == {
        "id",
        "username",
        "first_name",
        "last_name",
    }  # no email address
