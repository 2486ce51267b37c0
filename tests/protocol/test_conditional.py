"""Conditional requests: ETags on objects and lists, 304, If-Match → 412/428, lost updates refused."""

import threading

import pytest
from django.db import connection

from core.conditional import PreconditionFailed
from tasks_app.models import Comment, Task
from tasks_app.services.tasks import task_update
from tasks_app.tests.factories import CommentFactory, TaskFactory


@pytest.fixture
def task(cast):
    return TaskFactory(project=cast.project, created_by=cast.member, title="first")


def test_single_object_get_has_a_strong_etag_and_if_none_match_is_304(cast, api, task):
    client = api(cast.member)
    r = client.get(f"/api/v1/tasks/{task.pk}/")
    assert r.status_code == 200 and r["ETag"] == '"v1"'
    again = client.get(f"/api/v1/tasks/{task.pk}/", HTTP_IF_NONE_MATCH='"v1"')
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == '"v1"'
    client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "second"}, format="json")
    assert client.get(f"/api/v1/tasks/{task.pk}/", HTTP_IF_NONE_MATCH='"v1"').status_code == 200


def test_objects_without_version_get_a_hash_etag(cast, api, task):
    comment = CommentFactory(task=task, author=cast.member, body="hello")
    client = api(cast.member)
    url = f"/api/v1/tasks/{task.pk}/comments/{comment.pk}/"
    etag = client.get(url)["ETag"]
    assert etag.startswith('"h') and client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.patch(url, {"body": "edited"}, format="json", HTTP_IF_MATCH=etag).status_code == 200
    stale = client.patch(url, {"body": "lost"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412 and stale["ETag"] == client.get(url)["ETag"] != etag
    assert Comment.objects.get(pk=comment.pk).body == "edited"


def test_two_clients_editing_the_same_version_one_gets_412(cast, api, task):
    alice, bob = api(cast.member), api(cast.admin)
    etag = alice.get(f"/api/v1/tasks/{task.pk}/")["ETag"]
    assert bob.get(f"/api/v1/tasks/{task.pk}/")["ETag"] == etag
    first = alice.patch(f"/api/v1/tasks/{task.pk}/", {"title": "alice"}, format="json", HTTP_IF_MATCH=etag)
    second = bob.patch(f"/api/v1/tasks/{task.pk}/", {"title": "bob"}, format="json", HTTP_IF_MATCH=etag)
    assert first.status_code == 200 and first["ETag"] == '"v2"'
    assert second.status_code == 412 and second["ETag"] == '"v2"'
    assert second.json()["errors"][0]["code"] == "precondition_failed" and second.json()["errors"][0]["detail"]
    assert Task.objects.get(pk=task.pk).title == "alice"


def test_stale_delete_is_refused(cast, api, task):
    client = api(cast.member)
    client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "moved on"}, format="json")
    r = client.delete(f"/api/v1/tasks/{task.pk}/", HTTP_IF_MATCH='"v1"')
    assert r.status_code == 412 and Task.objects.filter(pk=task.pk).exists()
    assert client.delete(f"/api/v1/tasks/{task.pk}/", HTTP_IF_MATCH='"v2"').status_code == 204


def test_if_match_is_optional_unless_required(cast, api, task, settings):
    client = api(cast.member)
    assert client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "free"}, format="json").status_code == 200
    settings.API_REQUIRE_IF_MATCH = True
    r = client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "blind"}, format="json")
    assert r.status_code == 428 and r.json()["errors"][0]["code"] == "precondition_required"
    ok = client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "seen"}, format="json", HTTP_IF_MATCH='"v2"')
    assert ok.status_code == 200


def test_the_version_is_compared_under_the_row_lock(cast, task):
    """The view's If-Match check runs before the lock; the service compares again under it."""
    stale_copy = Task.objects.get(pk=task.pk)
    task_update(task=task, actor=cast.member, data={"title": "a"}, expected_version=1)
    with pytest.raises(PreconditionFailed) as refused:
        task_update(task=stale_copy, actor=cast.member, data={"title": "b"}, expected_version=1)
    assert refused.value.etag == '"v2"' and Task.objects.get(pk=task.pk).title == "a"


@pytest.mark.django_db(transaction=True)
def test_concurrent_patches_with_one_if_match_cannot_both_win(cast, api, monkeypatch):
    """Both requests pass the view's check (same ETag), then meet at a barrier before the service runs."""
    from tasks_app.api import views

    task = TaskFactory(project=cast.project, created_by=cast.member, title="start")
    barrier = threading.Barrier(2, timeout=20)
    real = views.task_update

    def gated(**kwargs):
        barrier.wait()
        return real(**kwargs)

    monkeypatch.setattr(views, "task_update", gated)
    results = {}

    def patch(who, title):
        try:
            r = api(cast.user(who)).patch(
                f"/api/v1/tasks/{task.pk}/", {"title": title}, format="json", HTTP_IF_MATCH='"v1"'
            )
            results[who] = r.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=patch, args=(w, w)) for w in ("member", "admin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == [200, 412]
    task.refresh_from_db()
    assert task.version == 2 and task.title == next(w for w, code in results.items() if code == 200)


def test_list_etag_304_costs_one_query(cast, api, task, django_assert_num_queries):
    for _ in range(30):
        TaskFactory(project=cast.project)
    client = api(cast.member)
    r = client.get("/api/v1/tasks/?page_size=50")
    etag = r["ETag"]
    assert r.status_code == 200 and etag.startswith('"l')
    with django_assert_num_queries(1) as ctx:  # the fingerprint; nothing else is read or serialized
        again = client.get("/api/v1/tasks/?page_size=50", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert "MAX" in ctx.captured_queries[0]["sql"].upper()


@pytest.mark.parametrize("path", ["/api/v1/tasks/", "/api/v1/auth/tokens/", "/api/v1/projects/"])
def test_a_page_that_does_not_exist_is_404_even_under_if_none_match_star(cast, api, task, path):
    """RFC 9110 §13.2.1: preconditions are ignored when the request without them would not succeed. The live
    fuzz (seed 21) found `?page=<text>` with `If-None-Match: *` answered 304."""
    client = api(cast.member)
    for page in ("c ~Áj", "0", "-1", "999", "1.5"):
        for headers in ({}, {"HTTP_IF_NONE_MATCH": "*"}, {"HTTP_IF_NONE_MATCH": client.get(path)["ETag"]}):
            r = client.get(path, {"page": page}, **headers)
            assert r.status_code == 404 and r.json()["errors"][0]["code"] == "invalid_page", (page, headers)
    assert client.get(path, {"page": "1"}, HTTP_IF_NONE_MATCH="*").status_code == 304
    assert client.get(path, {"page": "last"}, HTTP_IF_NONE_MATCH="*").status_code == 304


def test_list_etag_changes_with_edits_deletes_and_the_query(cast, api, task):
    client = api(cast.member)
    etag = client.get("/api/v1/tasks/")["ETag"]
    assert client.get("/api/v1/tasks/?status=todo")["ETag"] != etag
    assert api(cast.admin).get("/api/v1/tasks/")["ETag"] != etag  # per user
    client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "changed"}, format="json")
    changed = client.get("/api/v1/tasks/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    other = TaskFactory(project=cast.project)
    before_delete = client.get("/api/v1/tasks/")["ETag"]
    other.delete()
    assert client.get("/api/v1/tasks/", HTTP_IF_NONE_MATCH=before_delete).status_code == 200


def test_project_list_etag_follows_the_callers_role(cast, api):
    client = api(cast.member)
    etag = client.get("/api/v1/projects/")["ETag"]
    assert client.get("/api/v1/projects/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    api(cast.owner).patch(
        f"/api/v1/projects/{cast.project.pk}/members/{cast.member.pk}/", {"role": "admin"}, format="json"
    )
    assert client.get("/api/v1/projects/", HTTP_IF_NONE_MATCH=etag).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/{project}/",
        "/api/v1/projects/{project}/members/{member}/",
        "/api/v1/tasks/{task}/",
        "/api/v1/me/",
        "/api/v1/me/notification-preferences/",
    ],
)
def test_every_object_get_answers_an_etag_that_if_match_accepts(cast, api, task, path):
    url = path.format(project=cast.project.pk, member=cast.member.pk, task=task.pk)
    client = api(cast.owner)
    r = client.get(url)
    assert r.status_code == 200 and r["ETag"]
    assert client.get(url, HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 304
    assert client.patch(url, {}, format="json", HTTP_IF_MATCH='"stale"').status_code == 412
