"""Cursor pagination: opaque, stable under inserts, no COUNT, next/previous links and a Link header."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks_app.tests.factories import TaskFactory
from tests.support.api import api_errors


def walk(client, url, direction="next"):
    """Every page following `direction` links from `url`: a list of pages (lists of ids)."""
    pages = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.content
        body = r.json()
        assert "count" not in body
        pages.append([row["id"] for row in body["results"]])
        url = body[direction]
    return pages


@pytest.fixture
def tasks(cast):
    start = timezone.now() - timedelta(days=1)
    return [
        TaskFactory(project=cast.project, created_at=start + timedelta(minutes=i), due_at=None if i % 3 else start)
        for i in range(10)
    ]


def test_walks_every_row_once_in_order_both_ways(cast, api, tasks):
    client = api(cast.member)
    forward = walk(client, "/api/v1/tasks/?pagination=cursor&page_size=3")
    assert [len(p) for p in forward] == [3, 3, 3, 1]
    assert sum(forward, []) == [t.pk for t in reversed(tasks)]  # default ordering: newest first
    last = client.get("/api/v1/tasks/?pagination=cursor&page_size=3")
    for _ in range(3):
        last = client.get(last.json()["next"])
    backward = walk(client, last.json()["previous"], direction="previous")
    assert backward == forward[-2::-1]


@pytest.mark.parametrize("ordering", ["due_at", "-due_at", "priority", "-created_at"])
def test_ordering_with_ties_and_nulls_pages_without_gaps_or_repeats(cast, api, tasks, ordering):
    client = api(cast.member)
    pages = walk(client, f"/api/v1/tasks/?pagination=cursor&page_size=4&ordering={ordering}")
    ids = sum(pages, [])
    assert sorted(ids) == sorted(t.pk for t in tasks) and len(ids) == len(set(ids))


def test_stable_while_rows_are_inserted(cast, api, tasks):
    client = api(cast.member)
    first = client.get("/api/v1/tasks/?pagination=cursor&page_size=3").json()
    for i in range(5):  # newer than every listed task: they sort before page one
        TaskFactory(project=cast.project, title=f"new {i}")
    second = client.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [t.pk for t in reversed(tasks)][3:6]


def test_link_header_and_opaque_cursor(cast, api, tasks):
    client = api(cast.member)
    r = client.get("/api/v1/tasks/?pagination=cursor&page_size=3")
    assert r["Link"] == f'<{r.json()["next"]}>; rel="next"'
    nxt = client.get(r.json()["next"])
    assert 'rel="next"' in nxt["Link"] and 'rel="prev"' in nxt["Link"]
    assert "pagination=" not in r.json()["next"] and "cursor=" in r.json()["next"]


def test_cursor_pages_run_no_count(cast, api, tasks, django_assert_num_queries):
    client = api(cast.member)
    url = "/api/v1/tasks/?pagination=cursor&page_size=3"
    with django_assert_num_queries(2) as ctx:  # the page, then the page's labels (task_rows)
        r = client.get(url)
    # (the page's own per-row subtask/comment counts are correlated subqueries; no COUNT over the list)
    assert not any(q["sql"].upper().startswith("SELECT COUNT") for q in ctx.captured_queries)
    assert "LIMIT 4" in ctx.captured_queries[0]["sql"].upper()
    with django_assert_num_queries(1):  # the page's rows only: 304 before anything is built
        assert client.get(url, HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 304
    TaskFactory(project=cast.project)
    assert client.get(url, HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 200


def test_other_lists_page_by_cursor_too(cast, api, tasks):
    from tasks_app.tests.factories import CommentFactory

    for i in range(5):
        CommentFactory(task=tasks[0], author=cast.member, body=f"c{i}")
    client = api(cast.member)
    pages = walk(client, f"/api/v1/tasks/{tasks[0].pk}/comments/?cursor=&page_size=2")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert len(walk(client, "/api/v1/projects/?pagination=cursor&page_size=1")) == 1


def test_page_numbers_still_work(cast, api, tasks):
    body = api(cast.member).get("/api/v1/tasks/?page=2&page_size=3").json()
    assert body["count"] == 10 and len(body["results"]) == 3 and "page=3" in body["next"]


@pytest.mark.parametrize("cursor", ["garbage", "eyJ2IjpbMV0sImQiOiJuIn0", "eyJ2IjpbIngiLCAxXSwgImQiOiAibiJ9"])
def test_a_bad_cursor_is_400(cast, api, tasks, cursor):
    r = api(cast.member).get(f"/api/v1/tasks/?cursor={cursor}")
    assert r.status_code == 400 and "cursor" in api_errors(r)
