"""The task list's ETag follows the newest event of the caller's projects (comments, labels and subtasks change what a
row shows without touching the task row). Reading that event must cost the same on a busy instance as on a quiet
one: a quiet user's poll may not walk the events other projects wrote since."""

import pytest
from django.db import connection

from tasks_app.models import Event
from tasks_app.tests.factories import ProjectFactory, TaskFactory

LIST = "/api/v1/tasks/?page_size=50"


def event(project, **kw):
    return Event.objects.create(project=project, type="task.updated", data={}, **kw)


@pytest.fixture
def listing(cast):
    task = TaskFactory(project=cast.project, created_by=cast.member, title="mine")
    event(cast.project, task_id=task.pk)
    return task


def test_an_event_in_my_project_changes_my_list_etag_and_one_elsewhere_does_not(cast, api, listing):
    client = api(cast.member)
    first = client.get(LIST)["ETag"]
    event(ProjectFactory(owner=cast.outsider))
    assert client.get(LIST)["ETag"] == first
    event(cast.project, task_id=listing.pk)
    assert client.get(LIST)["ETag"] != first
    # A user in no project has no event to follow, and still gets a list and an ETag.
    assert api(cast.outsider).get(LIST)["ETag"].startswith('"l')


def event_rows_touched(plan):
    """Rows the plan read from tasks_app_event: returned plus filtered out, over every loop."""
    touched = 0
    if plan.get("Relation Name") == "tasks_app_event":
        loops = plan.get("Actual Loops", 1)
        touched += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    for child in plan.get("Plans", []):
        touched += event_rows_touched(child)
    return touched


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN ANALYZE's row counts are PostgreSQL's")
@pytest.mark.parametrize("projects", [1, 50])
def test_the_list_fingerprint_reads_no_event_of_other_projects(cast, api, listing, projects):
    # Busy projects the member is not in write 5,000 events after the member's last one. With one of them the
    # planner guesses that half the events are any project's; with fifty, 2% (and in this test's transaction the
    # visibility map is never set, so the index's heap visits look dear: the plain `= project` form then walked
    # the primary key backwards in CI).
    busy = [ProjectFactory(owner=cast.outsider) for _ in range(projects)]
    Event.objects.bulk_create([Event(project=busy[i % projects], type="task.updated", data={}) for i in range(5000)])
    with connection.cursor() as cur:
        cur.execute("ANALYZE tasks_app_event")
        cur.execute("ANALYZE tasks_app_membership")

    seen = []

    def capture(execute, sql, params, many, context):
        if "tasks_app_event" in sql:
            seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        response = api(cast.member).get(LIST)
    assert response.status_code == 200 and len(response.json()["results"]) == 1
    assert len(seen) == 1, seen  # the fingerprint query, the only one that reads events
    sql, params = seen[0]
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cur.fetchone()[0][0]["Plan"]
    # One step down the (project, id) index per membership; the old form read all 5,000 newer events.
    assert event_rows_touched(plan) <= 5, plan
