"""core/fastpath.py: a token client's repeated conditional list GET answered 304 before DRF runs, and never when
the full path would answer anything else (a change, a removed member, a revoked token, a throttle, the clock)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_create
from core import fastpath
from tasks_app.models import Membership
from tasks_app.services.tasks import task_update
from tasks_app.tests.factories import TaskFactory

LIST = "/api/v1/tasks/?page_size=50"


@pytest.fixture
def tasks(cast):
    return [TaskFactory(project=cast.project, created_by=cast.member, title=f"t{i}") for i in range(12)]


def fast(ctx):
    """Whether core/fastpath.py answered: its own token check ran (the full path reads the token by the ORM)."""
    return any(
        q["sql"] == fastpath.TOKEN_SQL.replace("%s", "?") or "t.digest = " in q["sql"] for q in ctx.captured_queries
    )


def token_client(user):
    token, key = api_token_create(user=user, name="poller")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client, token


def test_a_repeated_conditional_get_is_answered_with_two_queries_and_the_same_etag(
    cast, tasks, django_assert_num_queries
):
    from django.db import connection

    client, _ = token_client(cast.member)
    first = client.get(LIST)
    etag = first["ETag"]
    assert first.status_code == 200 and len(first.json()["results"]) == 12
    # The token check and the stored fingerprint query: no queryset is built, nothing else is read. On PostgreSQL
    # both statements go in one execute (one round trip).
    round_trips = 1 if connection.vendor == "postgresql" else 2
    with django_assert_num_queries(round_trips) as ctx:
        again = client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert fast(ctx) and "MAX" in ctx.captured_queries[-1]["sql"].upper()
    assert "RateLimit" in again  # the user throttle counted it, and the headers say so
    # The full path computes the same ETag for the unchanged list (a client's other worker process agrees).
    assert APIClient(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"]).get(LIST)["ETag"] == etag


def test_a_change_in_the_list_takes_the_full_path(cast, tasks):
    client, _ = token_client(cast.member)
    etag = client.get(LIST)["ETag"]
    assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
    task_update(task=tasks[0], actor=cast.member, data={"title": "renamed"})
    changed = client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert "renamed" in {row["title"] for row in changed.json()["results"]}


def test_a_removed_member_never_gets_a_304_for_what_they_saw(cast, tasks):
    client, _ = token_client(cast.member)
    etag = client.get(LIST)["ETag"]
    assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
    Membership.objects.filter(project=cast.project, user=cast.member).delete()
    after = client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    assert after.status_code == 200 and after.json()["results"] == []


def test_a_revoked_expired_or_deactivated_token_is_refused_not_answered(cast, tasks):
    for spoil in ("revoke", "expire", "deactivate"):
        client, token = token_client(cast.member)
        etag = client.get(LIST)["ETag"]
        assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
        if spoil == "revoke":
            token.delete()
        elif spoil == "expire":
            ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        else:
            type(cast.member).objects.filter(pk=cast.member.pk).update(is_active=False)
        assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 401, spoil
    type(cast.member).objects.filter(pk=cast.member.pk).update(is_active=True)


def test_a_user_no_longer_staff_gets_their_own_list_not_a_304(cast, tasks):
    from tasks_app.tests.factories import ProjectFactory

    TaskFactory(project=ProjectFactory(owner=cast.owner), title="not shared with staff's projects")
    client, _ = token_client(cast.staff)
    first = client.get(LIST)
    assert first.json()["count"] == 13  # staff see every task
    assert client.get(LIST, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    type(cast.staff).objects.filter(pk=cast.staff.pk).update(is_staff=False)
    after = client.get(LIST, HTTP_IF_NONE_MATCH=first["ETag"])
    assert after.status_code == 200 and after.json()["count"] == 0


def test_another_token_or_path_is_not_answered_from_the_entry(cast, tasks, django_assert_max_num_queries):
    client, _ = token_client(cast.member)
    etag = client.get(LIST)["ETag"]
    other, _ = token_client(cast.member)
    with django_assert_max_num_queries(10) as ctx:
        assert other.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304  # same user and list: the full path
    assert not fast(ctx)
    assert client.get(LIST + "&status=todo", HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_a_list_that_reads_the_clock_is_not_remembered(cast, tasks, django_assert_max_num_queries):
    client, _ = token_client(cast.member)
    for flag in ("overdue=false", "due_today=false"):
        url = f"{LIST}&{flag}"
        etag = client.get(url)["ETag"]
        with django_assert_max_num_queries(10) as ctx:
            assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert not fast(ctx), flag  # the full path: its fingerprint holds this moment


def test_a_throttled_client_gets_429_not_304(cast, tasks, settings):
    from core import conf

    client, _ = token_client(cast.member)
    etag = client.get(LIST)["ETag"]
    rates = dict(conf.API_THROTTLE_RATES, user="3/minute")
    settings.API_THROTTLE_RATES = rates
    codes = [client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code for _ in range(6)]
    assert 429 in codes and set(codes) <= {304, 429}


def test_a_token_unused_for_a_minute_is_touched_by_the_full_path(cast, tasks):
    client, token = token_client(cast.member)
    etag = client.get(LIST)["ETag"]
    stale = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
    token.refresh_from_db()
    assert token.last_used_at > stale


def test_polls_use_a_connection_of_their_own_kept_across_requests(transactional_db, cast, tasks):
    """Outside a transaction with the request's connection closed (CONN_MAX_AGE=0, as shipped), the fast path
    answers on its own kept connection: Django's is never opened for a 304, the kept one is the same server
    session poll after poll, sees committed changes, and a session killed under it costs one full-path answer."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    if connection.vendor != "postgresql":
        pytest.skip("the kept connection is PostgreSQL's (SQLite opens a file)")
    client, _ = token_client(cast.member)
    etag = client.get(LIST)["ETag"]
    opened = []

    def record(sender, connection, **kwargs):
        opened.append(connection)

    connection.close()
    connection_created.connect(record)
    try:
        polls = [client.get(LIST, HTTP_IF_NONE_MATCH=etag) for _ in range(3)]
        assert [r.status_code for r in polls] == [304] * 3
        kept = fastpath._kept.connection
        assert opened == [kept] and kept is not connection  # one connection, made once, not the request's
        session = kept.connection.info.backend_pid
        assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert kept.connection.info.backend_pid == session and connection.connection is None

        task_update(task=tasks[0], actor=cast.member, data={"title": "seen on the kept one"})
        connection.close()
        changed = client.get(LIST, HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200 and "seen on the kept one" in changed.content.decode()
        etag = changed["ETag"]
        assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304

        with connection.cursor() as cursor:  # the server ends the kept session (a restart, an idle timeout)
            cursor.execute("SELECT pg_terminate_backend(%s)", [session])
        connection.close()
        del opened[:]
        # The error closes the kept connection; the full path answers this one on the request's connection.
        assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert connection in opened and fastpath._kept.connection is None
        connection.close()  # (the test client keeps the request's connection open; a CONN_MAX_AGE=0 server does not)
        assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304  # and the next poll connects again
        assert fastpath._kept.connection.connection.info.backend_pid != session
    finally:
        connection_created.disconnect(record)


def test_a_kept_poll_with_percent_signs_and_datetimes_in_its_filters(transactional_db, cast, tasks):
    """On the kept connection the statements are rendered once with their parameters (psycopg's mogrify) and
    run without any: a substring search (LIKE '%the%': `the` is a stop word) and a datetime filter still answer
    304 while the list holds, and 200 once its task changes."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the kept connection is PostgreSQL's")
    task = TaskFactory(
        project=cast.project, created_by=cast.member, title="50% of the o'clock", due_at=timezone.now() + timedelta(1)
    )
    client, _ = token_client(cast.member)
    url = f"{LIST}&search=the&due_before=2100-01-01T00:00:00Z"
    first = client.get(url)
    assert first.status_code == 200 and [r["id"] for r in first.json()["results"]] == [task.pk]
    connection.close()
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    [rendered] = [e.rendered[1] for e in fastpath._entries.values() if e.rendered and "2100-01-01" in e.rendered[1]]
    assert "%the%" in rendered and connection.connection is None
    task_update(task=task, actor=cast.member, data={"priority": 4})
    connection.close()
    changed = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed.json()["results"][0]["priority"] == 4


def prepared_statements(kept):
    return {row[0] for row in kept.connection.execute("SELECT name FROM pg_prepared_statements").fetchall()}


def test_kept_polls_execute_prepared_statements_and_stop_preparing_where_they_vanish(
    transactional_db, cast, tasks, monkeypatch, settings
):
    """The token check and the fingerprint are PREPAREd once on the kept connection and EXECUTEd by each poll.
    Statements that vanish between polls (what PgBouncer's transaction pooling does) cost one full-path answer,
    and the process stops preparing; LIST_POLL_PREPARE=false (the default behind PgBouncer) never prepares."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the kept connection is PostgreSQL's")
    monkeypatch.setattr(fastpath, "_prepare_failed", False)
    client, _ = token_client(cast.member)
    etag = client.get(LIST)["ETag"]
    connection.close()
    assert [client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code for _ in range(3)] == [304] * 3
    kept = fastpath._kept.connection
    names = prepared_statements(kept)
    assert len(names) == 2 and "tm_poll_token" in names  # the token check and this list's fingerprint

    kept.connection.execute("DEALLOCATE ALL")  # gone behind the fast path's back
    assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304  # the full path answered
    assert fastpath._prepare_failed and fastpath._kept.connection is None
    connection.close()
    assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
    kept = fastpath._kept.connection
    assert kept is not None and connection.connection is None and prepared_statements(kept) == set()

    fastpath.close_kept_connection()
    monkeypatch.setattr(fastpath, "_prepare_failed", False)
    settings.LIST_POLL_PREPARE = False
    assert client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert connection.connection is None and prepared_statements(fastpath._kept.connection) == set()


def test_a_poller_of_a_live_server_gets_304s_until_the_list_changes(subprocess_env, tmp_path):
    """As a front end meets it: gunicorn (one process, so every poll after the first can take the fast path), real
    HTTP headers, a token; an edit through the API ends the 304s, a revoked token gets 401, no 5xx."""
    import httpx

    from tasks_app.tests.factories import MembershipFactory, ProjectFactory, UserFactory
    from tests.security.live import LiveStack

    user = UserFactory(username="poller")
    project = ProjectFactory(owner=UserFactory(username="poller-owner"))
    MembershipFactory(project=project, user=user, role="member")
    task = TaskFactory(project=project, created_by=user, title="first")
    token, key = api_token_create(user=user, name="front end")
    stack = LiveStack(subprocess_env, tmp_path)
    stack.web(workers=1, threads=2)
    try:
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Token {key}"}, timeout=30) as client:
            first = client.get(LIST)
            etag = first.headers["ETag"]
            polls = [client.get(LIST, headers={"If-None-Match": etag}) for _ in range(5)]
            assert [r.status_code for r in polls] == [304] * 5 and {r.headers["ETag"] for r in polls} == {etag}
            assert all(r.content == b"" and "RateLimit" in r.headers for r in polls)
            edited = client.patch(f"/api/v1/tasks/{task.pk}/", json={"title": "second"})
            assert edited.status_code == 200
            after = client.get(LIST, headers={"If-None-Match": etag})
            assert after.status_code == 200 and after.json()["results"][0]["title"] == "second"
            assert client.get(LIST, headers={"If-None-Match": after.headers["ETag"]}).status_code == 304
            token.delete()
            assert client.get(LIST, headers={"If-None-Match": after.headers["ETag"]}).status_code == 401
    finally:
        stack.stop()
    assert not stack.server_errors()
