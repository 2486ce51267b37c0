"""The change feed: commit order, visibility per event, resumable cursor, 410 after retention, long-poll."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tasks_app.changefeed import encode_cursor
from tasks_app.models import Event
from tasks_app.services.events import event_record
from tasks_app.tests.factories import ProjectFactory, TaskFactory


def feed(client, cursor=None, **params):
    query = {**({"cursor": cursor} if cursor else {}), **params}
    r = client.get("/api/v1/changes/", query)
    assert r.status_code == 200, r.content
    return r.json()


def make_task(client, project, title):
    r = client.post("/api/v1/tasks/", {"project": project.pk, "title": title}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def test_feed_lists_visible_changes_in_order_and_resumes(cast, api):
    owner = api(cast.owner)
    start = feed(api(cast.member), "now")["cursor"]
    a = make_task(owner, cast.project, "a")
    owner.patch(f"/api/v1/tasks/{a['id']}/", {"title": "a2"}, format="json")
    elsewhere = ProjectFactory(owner=cast.outsider)
    TaskFactory(project=elsewhere)  # no event; and the project is not the member's anyway
    api(cast.outsider).post("/api/v1/tasks/", {"project": elsewhere.pk, "title": "hidden"}, format="json")
    page = feed(api(cast.member), start, limit=1)
    assert [e["type"] for e in page["results"]] == ["task.created"] and page["has_more"]
    rest = feed(api(cast.member), page["cursor"])
    assert [e["type"] for e in rest["results"]] == ["task.updated"] and not rest["has_more"]
    assert rest["results"][0]["data"]["changes"]["title"] == ["a", "a2"]
    assert feed(api(cast.member), rest["cursor"])["results"] == []
    ids = [e["id"] for e in page["results"] + rest["results"]]
    assert ids == sorted(ids)


def test_a_removed_member_stops_receiving_events(cast, api):
    cursor = feed(api(cast.member), "now")["cursor"]
    make_task(api(cast.owner), cast.project, "seen")
    seen = feed(api(cast.member), cursor)
    assert [e["data"].get("title") for e in seen["results"]] == ["seen"]
    api(cast.owner).delete(f"/api/v1/projects/{cast.project.pk}/members/{cast.member.pk}/")
    make_task(api(cast.owner), cast.project, "after removal")
    assert feed(api(cast.member), seen["cursor"])["results"] == []
    assert feed(api(cast.admin), seen["cursor"])["results"]  # others still see them


def test_cursor_older_than_retention_is_410_with_resync_instructions(cast, api, settings):
    settings.EVENT_RETENTION_DAYS = 30
    stale = encode_cursor((0, 1), timezone.now() - timedelta(days=31))
    r = api(cast.member).get("/api/v1/changes/", {"cursor": stale})
    assert r.status_code == 410 and r.json()["errors"][0]["code"] == "cursor_expired"
    assert "resync" in " ".join(e["detail"] for e in r.json()["errors"]).lower()
    assert api(cast.member).get("/api/v1/changes/", {"cursor": "nonsense"}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_long_poll_answers_when_a_change_commits(cast, api, settings):
    settings.CHANGES_MAX_WAIT_SECONDS = 30  # tests cap it at 1 s
    cursor = feed(api(cast.member), "now")["cursor"]

    def later():
        time.sleep(0.5)
        try:
            make_task(api(cast.owner), cast.project, "awaited")
        finally:
            connection.close()

    writer = threading.Thread(target=later)
    writer.start()
    page = feed(api(cast.member), cursor, wait=20)
    writer.join(20)
    assert [e["data"].get("title") for e in page["results"]] == ["awaited"]


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_out_of_id_order_is_not_skipped_and_writers_do_not_wait(cast, api):
    """Transaction A records event 11 and stays open; B records event 12 and commits. A reader must not move
    past 12 while 11 may still commit (it would never see 11), and B must not wait for A (writers take no lock:
    an order lock taken mid-transaction deadlocked against row locks under load). SQLite runs one write
    transaction at a time, so there A and B cannot overlap and ids are commit order."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes write transactions: id order is commit order")
    start = feed(api(cast.member), "now")["cursor"]
    recorded, release, done, ids = threading.Event(), threading.Event(), threading.Event(), {}

    def first():
        try:
            with transaction.atomic():
                ids["a"] = event_record(type="project.updated", project_id=cast.project.pk, data={"n": "a"}).pk
                recorded.set()
                release.wait(20)
        finally:
            connection.close()

    def second():
        try:
            with transaction.atomic():
                ids["b"] = event_record(type="project.updated", project_id=cast.project.pk, data={"n": "b"}).pk
            done.set()
        finally:
            connection.close()

    t1 = threading.Thread(target=first)
    t1.start()
    try:
        assert recorded.wait(20)
        t2 = threading.Thread(target=second)
        t2.start()
        t2.join(20)
        assert done.is_set(), "the second writer waited for the first"
        assert ids["a"] < ids["b"]
        early = feed(api(cast.member), start)
        assert early["results"] == []  # b is committed, but a (an older transaction) may still commit before it
    finally:
        release.set()
        t1.join(20)
    page = feed(api(cast.member), early["cursor"])
    assert sorted(e["id"] for e in page["results"]) == sorted([ids["a"], ids["b"]])
    assert feed(api(cast.member), page["cursor"])["results"] == []


@pytest.mark.django_db(transaction=True)
def test_row_locks_around_events_do_not_deadlock(cast):
    """What the live load hit: B records an event, then needs task a's row (a FOR UPDATE, or a foreign key to
    it); A holds a's row, then records an event. With an order lock taken by event writers, A waited for B's
    lock and B for A's row: a deadlock. Without it, B simply waits for A's commit."""
    from tasks_app.models import Task

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time (IMMEDIATE): A cannot begin while B writes")

    a = TaskFactory(project=cast.project)
    b_recorded, a_locked, errors = threading.Event(), threading.Event(), []

    def writer_a():
        try:
            assert b_recorded.wait(20)
            with transaction.atomic():
                Task.objects.select_for_update().get(pk=a.pk)
                a_locked.set()
                event_record(type="task.updated", project_id=cast.project.pk, task_id=a.pk, data={"by": "a"})
        except Exception as exc:
            errors.append(exc)
        finally:
            a_locked.set()
            connection.close()

    def writer_b():
        try:
            with transaction.atomic():
                event_record(type="task.updated", project_id=cast.project.pk, task_id=a.pk, data={"by": "b"})
                b_recorded.set()
                assert a_locked.wait(20)
                Task.objects.select_for_update().get(pk=a.pk)
        except Exception as exc:
            errors.append(exc)
        finally:
            b_recorded.set()
            connection.close()

    threads = [threading.Thread(target=writer_a), threading.Thread(target=writer_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert Event.objects.filter(task_id=a.pk).count() == 2
