"""/api/v1/recurring-tasks/: CRUD, permissions, validation, preview, pause/resume, list queries."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tasks_app.models import RecurringTaskTemplate, Task
from tasks_app.tests.recurring_helpers import make_template
from tests.support.api import api_error_codes, api_errors

URL = "/api/v1/recurring-tasks/"
BODY = {
    "title": "Standup notes",
    "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "dtstart": "2026-05-04T09:30:00+02:00",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def template(cast):
    return make_template(cast, dtstart=datetime(2026, 5, 4, 7, tzinfo=UTC), actor=cast.member)


ROLES = ["anonymous", "outsider", "viewer", "member", "admin", "owner", "staff"]
MATRIX = [
    ("get", URL, None, [401, 200, 200, 200, 200, 200, 200]),
    ("post", URL, "create", [401, 400, 403, 201, 201, 201, 201]),
    ("get", URL + "{t}/", None, [401, 404, 200, 200, 200, 200, 200]),
    ("patch", URL + "{t}/", {"title": "New"}, [401, 404, 403, 200, 200, 200, 200]),
    ("put", URL + "{t}/", {"title": "New"}, [401, 404, 403, 200, 200, 200, 200]),
    ("get", URL + "{t}/preview/", None, [401, 404, 200, 200, 200, 200, 200]),
    ("post", URL + "{t}/pause/", None, [401, 404, 403, 200, 200, 200, 200]),
    ("post", URL + "{t}/resume/", None, [401, 404, 403, 200, 200, 200, 200]),
    ("delete", URL + "{t}/", None, [401, 404, 403, 204, 204, 204, 204]),  # the member created it
]


@pytest.mark.parametrize(
    "method,url,body,role,expected",
    [pytest.param(m, u, b, role, e[i], id=f"{m}-{u}-{role}") for m, u, b, e in MATRIX for i, role in enumerate(ROLES)],
)
def test_permission_matrix(cast, api, template, method, url, body, role, expected):
    if body == "create":
        body = {**BODY, "project": cast.project.pk}
    client = api(None if role == "anonymous" else cast.user(role))
    response = getattr(client, method)(url.format(t=template.pk), body, format="json")
    assert response.status_code == expected, response.content


def test_member_cannot_delete_someone_elses_template(cast, api):
    template = make_template(cast, dtstart=datetime(2026, 5, 4, 7, tzinfo=UTC), actor=cast.admin)
    assert api(cast.member).delete(f"{URL}{template.pk}/").status_code == 403
    assert RecurringTaskTemplate.objects.filter(pk=template.pk).exists()


def test_create_then_read_back(cast, api):
    with time_machine.travel(datetime(2026, 5, 1, tzinfo=UTC), tick=False):
        r = api(cast.member).post(
            URL,
            {
                **BODY,
                "project": cast.project.pk,
                "assignee": cast.member.pk,
                "lead_time": "1 00:00:00",
                "catch_up": "latest",
            },
            format="json",
        )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["next_occurrence_at"] == "2026-05-04T07:30:00Z"
    assert (body["lead_time"], body["catch_up"], body["mode"], body["enabled"]) == (
        "1 00:00:00",
        "latest",
        "schedule",
        True,
    )
    assert body["assignee"]["id"] == cast.member.pk and body["instances_created"] == 0


@pytest.mark.parametrize(
    "change,field",
    [
        ({"rrule": "FREQ=NEVER"}, "rrule"),
        ({"rrule": "FREQ=DAILY;BYHOUR=25"}, "rrule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"until": "2026-01-01T00:00:00Z"}, "until"),
        ({"dtstart": "2026-05-04T09:30:00"}, "dtstart"),
        ({"until": "2026-06-01T00:00:00"}, "until"),
        ({"count": 0}, "count"),
        ({"lead_time": "-1 00:00:00"}, "lead_time"),
        ({"mode": "whenever"}, "mode"),
        ({"assignee": "{viewer}"}, "assignee"),
        ({"rrule": "FREQ=DAILY;COUNT=2", "count": 3}, "count"),
        ({"rrule": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30"}, "rrule"),  # never occurs: dateutil would scan to 9999
        ({"rrule": "FREQ=DAILY;BYMONTH=4,6;BYMONTHDAY=-31"}, "rrule"),
    ],
)
def test_bad_input_is_400_on_the_field_and_writes_nothing(cast, api, change, field):
    change = {k: (cast.viewer.pk if v == "{viewer}" else v) for k, v in change.items()}
    r = api(cast.owner).post(URL, {**BODY, "project": cast.project.pk, **change}, format="json")
    assert r.status_code == 400, r.content
    assert field in api_errors(r)
    assert not RecurringTaskTemplate.objects.exists()


def test_a_rule_that_never_occurs_is_refused_on_update_too(cast, api, template):
    r = api(cast.owner).patch(f"{URL}{template.pk}/", {"rrule": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=31"}, format="json")
    assert r.status_code == 400 and api_error_codes(r) == {"rrule": ["invalid_recurrence"]}
    template.refresh_from_db()
    assert template.version == 1


def test_bad_update_is_400_and_leaves_the_template(cast, api, template):
    r = api(cast.owner).patch(
        f"{URL}{template.pk}/", {"title": "Renamed", "rrule": "FREQ=HOURLY;BYFOO=1"}, format="json"
    )
    assert r.status_code == 400 and "rrule" in api_errors(r)
    template.refresh_from_db()
    assert template.title == "Water the plants" and template.version == 1


def test_preview_gives_utc_and_local_times_across_dst(cast, api):
    template = make_template(cast, dtstart=datetime(2026, 3, 27, 8, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 3, 26, tzinfo=UTC), tick=False):
        r = api(cast.viewer).get(f"{URL}{template.pk}/preview/?count=4")
    assert r.status_code == 200
    body = r.json()
    assert body["timezone"] == "Europe/Berlin"
    assert [o["utc"] for o in body["occurrences"]] == [
        "2026-03-27T08:00:00Z",
        "2026-03-28T08:00:00Z",
        "2026-03-29T07:00:00Z",
        "2026-03-30T07:00:00Z",
    ]
    assert [o["local"] for o in body["occurrences"]] == [
        "2026-03-27T09:00:00+01:00",
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]


@pytest.mark.parametrize("count", ["0", "101", "many"])
def test_preview_count_is_bounded(cast, api, template, count):
    r = api(cast.viewer).get(f"{URL}{template.pk}/preview/?count={count}")
    assert r.status_code == 400 and "count" in api_errors(r)


def test_preview_stops_when_the_rule_ends(cast, api):
    template = make_template(cast, rrule="FREQ=DAILY;COUNT=3", dtstart=datetime(2030, 1, 1, 8, tzinfo=UTC))
    assert len(api(cast.viewer).get(f"{URL}{template.pk}/preview/?count=100").json()["occurrences"]) == 3


def test_pause_and_resume(cast, api, template):
    r = api(cast.member).post(f"{URL}{template.pk}/pause/")
    assert r.json()["enabled"] is False and r.json()["next_occurrence_at"] is None
    r = api(cast.member).post(f"{URL}{template.pk}/resume/")
    assert r.json()["enabled"] is True and r.json()["next_occurrence_at"] is not None


def test_update_queues_the_apply_task_and_marks_the_template(cast, api, template, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        r = api(cast.member).patch(f"{URL}{template.pk}/", {"title": "Renamed"}, format="json")
    assert r.status_code == 200 and r.json()["version"] == 2
    assert [c.args[0] for c in callbacks] == ["recurring.update_recurring_task_template"]
    assert callbacks[0].keywords["args"] == [template.pk]
    template.refresh_from_db()
    assert template.apply_pending and template.enqueued_at is not None


def test_task_output_links_instances_to_their_template(cast, api):
    with time_machine.travel(datetime(2026, 5, 1, 6, tzinfo=UTC), tick=False):
        template = make_template(cast, dtstart=datetime(2026, 5, 1, 7, tzinfo=UTC), lead_time=timedelta(hours=2))
        from tasks_app.recurring.engine import recurring_process_due

        recurring_process_due()
    task = Task.objects.get()
    body = api(cast.viewer).get(f"/api/v1/tasks/{task.pk}/").json()
    assert (body["recurring_template"], body["occurrence_at"]) == (template.pk, "2026-05-01T07:00:00Z")
    r = api(cast.member).patch(
        f"/api/v1/tasks/{task.pk}/", {"title": "Mine", "recurring_template": None}, format="json"
    )
    # read-only: refused by name, and nothing of the write applied
    assert r.status_code == 400 and api_error_codes(r) == {"recurring_template": ["unexpected_field"]}
    task.refresh_from_db()
    assert task.recurring_template_id == template.pk and task.title != "Mine"


def test_list_filters(cast, api, template):
    other = make_template(cast, dtstart=datetime(2026, 5, 4, 7, tzinfo=UTC), title="Paused")
    api(cast.owner).post(f"{URL}{other.pk}/pause/")
    titles = [t["title"] for t in api(cast.viewer).get(URL + "?enabled=false").json()["results"]]
    assert titles == ["Paused"]
    assert api(cast.viewer).get(URL + f"?project={cast.project.pk}").json()["count"] == 2
    assert api(cast.outsider).get(URL).json()["count"] == 0


@pytest.mark.parametrize("n", [5, 50])
def test_list_queries_do_not_grow(cast, api, django_assert_num_queries, n):
    for i in range(n):
        make_template(
            cast, title=f"T{i}", dtstart=datetime(2026, 5, 4, 7, tzinfo=UTC), assignee=cast.member if i % 2 else None
        )
    with django_assert_num_queries(2):  # count + one page joined with project, assignee, creator
        r = api(cast.viewer).get(URL + "?page_size=50")
    assert len(r.json()["results"]) == n
