from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services
from notifications.models import Notification, NotificationPreference
from notifications.tests.factories import NotificationFactory
from tasks_app.tests.factories import TaskFactory
from tests.support.api import api_error_fields, api_errors

URL = "/api/v1/notifications/"
PREFS = "/api/v1/me/notification-preferences/"


@pytest.fixture
def inbox(cast):
    """Three notifications for member (one read, one email-only), one for admin."""
    now = timezone.now()
    old = NotificationFactory(recipient=cast.member, text="old", created_at=now - timedelta(hours=3))
    read = NotificationFactory(
        recipient=cast.member, text="read", created_at=now - timedelta(hours=2), read_at=now - timedelta(hours=1)
    )
    new = NotificationFactory(
        recipient=cast.member,
        text="new",
        created_at=now - timedelta(hours=1),
        actor=cast.owner,
        task=TaskFactory(project=cast.project, title="T1"),
    )
    hidden = NotificationFactory(recipient=cast.member, text="email only", show_in_app=False)
    other = NotificationFactory(recipient=cast.admin, text="not yours")
    return {"old": old, "read": read, "new": new, "hidden": hidden, "other": other}


class TestList:
    def test_own_in_app_notifications_newest_first(self, cast, api, inbox):
        r = api(cast.member).get(URL)
        assert r.status_code == 200
        body = r.json()
        assert [n["text"] for n in body["results"]] == ["new", "read", "old"]
        first = body["results"][0]
        assert first["actor"] == {"id": cast.owner.pk, "username": "owner"}
        assert first["task"]["title"] == "T1" and first["is_read"] is False

    @pytest.mark.parametrize("value,expected", [("true", ["new", "old"]), ("false", ["read"]), ("1", ["new", "old"])])
    def test_unread_filter(self, cast, api, inbox, value, expected):
        r = api(cast.member).get(URL, {"unread": value})
        assert [n["text"] for n in r.json()["results"]] == expected

    def test_bad_unread_value_is_400_on_field(self, cast, api, inbox):
        r = api(cast.member).get(URL, {"unread": "maybe"})
        assert r.status_code == 400 and "unread" in api_errors(r)

    def test_anonymous_is_401(self, api, db):
        assert api().get(URL).status_code == 401

    def test_paginated(self, cast, api, inbox):
        r = api(cast.member).get(URL, {"page_size": 2})
        assert r.json()["count"] == 3 and len(r.json()["results"]) == 2 and r.json()["next"]

    @pytest.mark.parametrize("n", [5, 50])
    def test_query_count_is_constant(self, cast, api, n, django_assert_num_queries):
        task = TaskFactory(project=cast.project)
        for _ in range(n):
            NotificationFactory(recipient=cast.member, actor=cast.owner, task=task)
        client = api(cast.member)
        with django_assert_num_queries(2):  # count + page (actor and task joined)
            r = client.get(URL, {"page_size": 100})
        assert len(r.json()["results"]) == n


class TestReadState:
    def test_mark_one_read(self, cast, api, inbox):
        r = api(cast.member).post(f"{URL}{inbox['new'].pk}/read/")
        assert r.status_code == 200 and r.json()["is_read"] is True
        inbox["new"].refresh_from_db()
        assert inbox["new"].read_at is not None

    def test_marking_read_twice_keeps_the_first_time(self, cast, api, inbox):
        client = api(cast.member)
        first = client.post(f"{URL}{inbox['new'].pk}/read/").json()["read_at"]
        assert client.post(f"{URL}{inbox['new'].pk}/read/").json()["read_at"] == first

    @pytest.mark.parametrize("which", ["other", "hidden"])
    def test_others_and_email_only_rows_are_404(self, cast, api, inbox, which):
        r = api(cast.member).post(f"{URL}{inbox[which].pk}/read/")
        assert r.status_code == 404
        inbox[which].refresh_from_db()
        assert inbox[which].read_at is None

    def test_read_all_and_unread_count(self, cast, api, inbox):
        client = api(cast.member)
        assert client.get(f"{URL}unread-count/").json() == {"count": 2}
        assert client.post(f"{URL}read-all/").json() == {"updated": 2}
        assert client.get(f"{URL}unread-count/").json() == {"count": 0}
        inbox["other"].refresh_from_db()
        assert inbox["other"].read_at is None
        assert api(cast.admin).get(f"{URL}unread-count/").json() == {"count": 1}


class TestPreferences:
    def test_defaults(self, cast, api):
        body = api(cast.member).get(PREFS).json()
        assert body["assigned"] == {"in_app": True, "email": True}
        assert body["daily_summary"] == {"in_app": False, "email": True}
        assert set(body) == {"assigned", "mentioned", "reminder", "daily_summary", "weekly_report", "webhook_disabled"}

    def test_patch_one_channel(self, cast, api):
        r = api(cast.member).patch(PREFS, {"mentioned": {"email": False}}, format="json")
        assert r.status_code == 200
        assert r.json()["mentioned"] == {"in_app": True, "email": False}
        assert r.json()["assigned"] == {"in_app": True, "email": True}
        assert api(cast.admin).get(PREFS).json()["mentioned"] == {"in_app": True, "email": True}

    @pytest.mark.parametrize(
        "body,field",
        [
            ({"bogus": {"email": False}}, "bogus"),
            ({"assigned": {"email": "perhaps"}}, "assigned"),
            ({"assigned": {"sms": True}}, "assigned"),
            ({"assigned": True}, "assigned"),
        ],
    )
    def test_bad_input_is_400_and_changes_nothing(self, cast, api, body, field):
        r = api(cast.member).patch(PREFS, body, format="json")
        assert r.status_code == 400 and field in api_error_fields(r)
        assert not NotificationPreference.objects.exists()


def test_hidden_rows_do_not_count_as_unread(cast, api):
    services.preferences_update(user=cast.member, changes={"assigned": {"in_app": False}})
    services.notification_create(recipient=cast.member, kind="assigned", text="x")
    assert Notification.objects.count() == 1
    assert api(cast.member).get(f"{URL}unread-count/").json() == {"count": 0}
