"""/api/v1/tasks/{id}/reminders/: permissions, validation (field-level 400s), due-date moves, list queries."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from reminders.models import Reminder, ReminderOutcome
from reminders.services import reminder_create
from tasks_app.models import Status
from tasks_app.services.projects import project_update
from tasks_app.services.tasks import task_update
from tasks_app.tests.factories import TaskFactory
from tests.support.api import api_errors

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
DUE = NOW + timedelta(days=2)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def task(cast):
    return TaskFactory(project=cast.project, assignee=cast.member, due_at=DUE, created_by=cast.member)


@pytest.fixture
def reminder(cast, task):
    return reminder_create(task=task, actor=cast.member, offset=timedelta(hours=-1))


def url(task, reminder=None):
    return f"/api/v1/tasks/{task.pk}/reminders/" + (f"{reminder.pk}/" if reminder else "")


ROLES = ["anonymous", "outsider", "viewer", "member", "admin", "owner", "staff"]
MATRIX = [
    ("get", False, None, [401, 404, 200, 200, 200, 200, 200]),
    ("post", False, {"offset_minutes": -30}, [401, 404, 403, 201, 201, 201, 201]),
    ("get", True, None, [401, 404, 200, 200, 200, 200, 200]),
    ("patch", True, {"note": "bring the report"}, [401, 404, 403, 200, 200, 200, 200]),
    ("delete", True, None, [401, 404, 403, 204, 204, 204, 204]),
]


@pytest.mark.parametrize(
    "method,detail,body,role,expected",
    [
        pytest.param(m, d, b, role, e[i], id=f"{m}-{'detail' if d else 'list'}-{role}")
        for m, d, b, e in MATRIX
        for i, role in enumerate(ROLES)
    ],
)
def test_permission_matrix(cast, api, task, reminder, method, detail, body, role, expected):
    client = api(None if role == "anonymous" else cast.user(role))
    response = getattr(client, method)(url(task, reminder if detail else None), body, format="json")
    assert response.status_code == expected, response.content


def test_relative_reminder_defaults_to_the_assignee_and_fires_before_the_due_date(cast, api, task):
    r = api(cast.admin).post(url(task), {"offset_minutes": -90, "note": "prepare"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["kind"] == "relative" and body["offset_minutes"] == -90
    assert body["fire_at"] == "2026-05-06T07:30:00Z"
    assert body["recipient"]["id"] == cast.member.pk and body["follows_assignee"] is True
    assert body["sent_at"] is None and body["outcome"] == ""


def test_absolute_reminder_for_a_chosen_member(cast, api, task):
    r = api(cast.member).post(
        url(task), {"remind_at": "2026-05-05T08:00:00+02:00", "recipient": cast.viewer.pk}, format="json"
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["kind"], body["fire_at"], body["recipient"]["id"]) == (
        "absolute",
        "2026-05-05T06:00:00Z",
        cast.viewer.pk,
    )
    assert body["follows_assignee"] is False


def test_without_assignee_the_creator_of_the_reminder_gets_it(cast, api):
    task = TaskFactory(project=cast.project, due_at=DUE)
    r = api(cast.admin).post(url(task), {"offset_minutes": -10}, format="json")
    assert r.status_code == 201 and r.json()["recipient"]["id"] == cast.admin.pk


@pytest.mark.parametrize(
    "body,field",
    [
        ({"remind_at": "2026-05-04T08:59:00Z"}, "remind_at"),  # in the past
        ({"offset_minutes": -3 * 24 * 60}, "offset_minutes"),  # due - 3 days is in the past
        ({}, "remind_at"),
        ({"remind_at": "2026-05-05T08:00:00Z", "offset_minutes": -5}, "remind_at"),
        ({"remind_at": "2026-05-05T08:00:00"}, "remind_at"),  # naive
        ({"offset_minutes": 10**7}, "offset_minutes"),
        ({"offset_minutes": -5, "recipient": "outsider"}, "recipient"),
        ({"offset_minutes": -5, "recipient": 999999}, "recipient"),
    ],
)
def test_bad_input_is_a_field_level_400(cast, api, task, body, field):
    if body.get("recipient") == "outsider":
        body = {**body, "recipient": cast.outsider.pk}
    r = api(cast.member).post(url(task), body, format="json")
    assert r.status_code == 400, r.content
    assert field in api_errors(r), r.json()
    assert not Reminder.objects.exists()


def test_relative_reminder_on_a_task_without_due_date_is_a_400(cast, api):
    task = TaskFactory(project=cast.project, assignee=cast.member)
    r = api(cast.member).post(url(task), {"offset_minutes": -60}, format="json")
    assert r.status_code == 400 and "offset_minutes" in api_errors(r)
    assert "due date" in api_errors(r)["offset_minutes"][0]


def test_reminders_on_closed_tasks_or_archived_projects_are_refused(cast, api, task):
    task_update(task=task, actor=cast.member, data={"status": Status.DONE})
    assert api(cast.member).post(url(task), {"offset_minutes": -60}, format="json").status_code == 409
    other = TaskFactory(project=cast.project, due_at=DUE)
    project_update(project=cast.project, actor=cast.owner, data={"archived": True})
    assert api(cast.member).post(url(other), {"offset_minutes": -60}, format="json").status_code == 409


def test_moving_the_due_date_moves_relative_reminders_only(cast, api, task, reminder):
    absolute = reminder_create(task=task, actor=cast.member, remind_at=NOW + timedelta(hours=5))
    r = api(cast.member).patch(f"/api/v1/tasks/{task.pk}/", {"due_at": "2026-05-10T12:00:00Z"}, format="json")
    assert r.status_code == 200, r.content
    reminder.refresh_from_db()
    absolute.refresh_from_db()
    assert reminder.fire_at == datetime(2026, 5, 10, 11, tzinfo=UTC)
    assert absolute.fire_at == NOW + timedelta(hours=5)
    task_update(task=task, actor=cast.member, data={"due_at": None})
    reminder.refresh_from_db()
    assert reminder.fire_at is None  # disarmed until the task has a due date again


def test_a_sent_reminder_is_rearmed_only_when_moved_to_the_future(cast, task, reminder):
    Reminder.objects.filter(pk=reminder.pk).update(sent_at=NOW, outcome=ReminderOutcome.SENT, claimed_at=NOW)
    task_update(task=task, actor=cast.member, data={"due_at": NOW - timedelta(hours=1)})
    reminder.refresh_from_db()
    assert reminder.fire_at == NOW - timedelta(hours=2) and reminder.sent_at == NOW  # moved to the past: stays sent
    task_update(task=task, actor=cast.member, data={"due_at": NOW + timedelta(days=1)})
    reminder.refresh_from_db()
    assert reminder.fire_at == NOW + timedelta(hours=23)
    assert (reminder.sent_at, reminder.claimed_at, reminder.outcome) == (None, None, "")


def test_default_recipient_follows_reassignment_but_a_chosen_one_does_not(cast, task, reminder):
    chosen = reminder_create(task=task, actor=cast.member, offset=timedelta(hours=-2), recipient=cast.viewer)
    task_update(task=task, actor=cast.member, data={"assignee": cast.admin})
    reminder.refresh_from_db()
    chosen.refresh_from_db()
    assert reminder.recipient_id == cast.admin.pk and chosen.recipient_id == cast.viewer.pk


def test_patch_switches_kind_and_validates(cast, api, task, reminder):
    r = api(cast.member).patch(url(task, reminder), {"remind_at": "2026-05-05T10:00:00Z"}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["kind"], r.json()["fire_at"]) == ("absolute", "2026-05-05T10:00:00Z")
    r = api(cast.member).patch(url(task, reminder), {"remind_at": "2026-05-01T10:00:00Z"}, format="json")
    assert r.status_code == 400 and "remind_at" in api_errors(r)
    r = api(cast.member).patch(url(task, reminder), {"recipient": cast.outsider.pk}, format="json")
    assert r.status_code == 400 and "recipient" in api_errors(r)
    reminder.refresh_from_db()
    assert reminder.fire_at == datetime(2026, 5, 5, 10, tzinfo=UTC) and reminder.recipient_id == cast.member.pk


def test_a_change_that_leaves_no_time_or_two_gets_its_own_code_and_mixed_refusals_keep_theirs(
    cast, api, task, reminder
):
    client = api(cast.member)  # `reminder` is relative (offset_minutes)
    for body in ({"offset_minutes": None}, {"remind_at": None, "offset_minutes": None}):
        r = client.patch(url(task, reminder), body, format="json")
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "remind_at_or_offset", (body, r.content)
    both = {"remind_at": "2026-05-05T10:00:00Z", "offset_minutes": -30}  # the change's schema says "not both"
    assert client.patch(url(task, reminder), both, format="json").json()["errors"][0]["code"] == "remind_at_or_offset"
    # Two refusals of different kinds: each field's error carries its own code.
    r = client.patch(url(task, reminder), {"offset_minutes": None, "recipient": cast.outsider.pk}, format="json")
    assert r.status_code == 400
    assert {e["attr"]: e["code"] for e in r.json()["errors"]} == {
        "remind_at": "remind_at_or_offset",
        "recipient": "not_a_member",
    }


def test_the_change_schema_states_not_both_times(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    patched = schema["components"]["schemas"]["PatchedReminderInputRequest"]
    assert patched["not"]["required"] == ["remind_at", "offset_minutes"]


def test_reminders_of_another_task_are_404(cast, api, task, reminder):
    other = TaskFactory(project=cast.project, due_at=DUE)
    assert api(cast.member).get(url(other, reminder)).status_code == 404


def test_list_is_paginated_with_constant_queries(cast, api, task, django_assert_num_queries):
    client = api(cast.viewer)
    for i in range(3):
        reminder_create(task=task, actor=cast.member, offset=timedelta(minutes=-10 - i))
    with django_assert_num_queries(3):  # the task (scoped to the user), the count, the page with recipients
        r = client.get(url(task))
    assert r.status_code == 200 and r.json()["count"] == 3
    for i in range(22):
        reminder_create(
            task=task,
            actor=cast.member,
            offset=timedelta(minutes=-20 - i),
            recipient=cast.viewer if i % 2 else cast.admin,
        )
    with django_assert_num_queries(3):
        r = client.get(url(task))
    body = r.json()
    assert body["count"] == 25 and len(body["results"]) == 20 and body["next"]
    fire_times = [item["fire_at"] for item in body["results"]]
    assert fire_times == sorted(fire_times)
    task_update(task=task, actor=cast.member, data={"due_at": None})  # all disarmed, then one armed
    reminder_create(task=task, actor=cast.member, remind_at=NOW + timedelta(hours=1))
    first = client.get(url(task)).json()["results"][0]
    assert first["kind"] == "absolute" and first["fire_at"] == "2026-05-04T10:00:00Z"
