"""Idempotency-Key on every POST: replay, reuse, per user, expiry, concurrency with real transactions."""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_token_create
from core.idempotency import idempotency_cleanup
from core.models import IdempotencyKey
from tasks_app import signals
from tasks_app.models import Comment, Task
from tests.support.api import api_errors


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='test')[1]}")
    return client


def create_task(client, key, title="Write the report", project=None):
    body = {"project": project, "title": title}
    return client.post("/api/v1/tasks/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_retry_returns_the_same_answer_and_creates_one_row(cast):
    client = token_client(cast.member)
    first = create_task(client, "retry-1", project=cast.project.pk)
    again = create_task(client, "retry-1", project=cast.project.pk)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert again["ETag"] == first["ETag"]
    assert Task.objects.count() == 1


def test_other_post_endpoints_share_the_mechanism(cast, api):
    task = Task.objects.create(project=cast.project, title="t", created_by=cast.member)
    client = api(cast.member)  # DRF's forced authentication is seen too
    url = f"/api/v1/tasks/{task.pk}/comments/"
    for _ in range(3):
        r = client.post(url, {"body": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
        assert r.status_code == 201
    assert Comment.objects.filter(task=task).count() == 1


def test_same_key_different_body_is_422(cast):
    client = token_client(cast.member)
    create_task(client, "k", project=cast.project.pk)
    r = create_task(client, "k", title="Something else", project=cast.project.pk)
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert "idempotency_key" in [e["attr"] for e in r.json()["errors"]]
    assert Task.objects.count() == 1


def test_keys_are_per_user(cast):
    create_task(token_client(cast.member), "shared", project=cast.project.pk)
    assert create_task(token_client(cast.admin), "shared", project=cast.project.pk).status_code == 201
    assert Task.objects.count() == 2


def test_an_error_is_not_stored_so_a_corrected_retry_runs(cast):
    client = token_client(cast.member)
    bad = create_task(client, "fix-me", title="", project=cast.project.pk)
    assert bad.status_code == 400 and not IdempotencyKey.objects.exists()
    assert create_task(client, "fix-me", project=cast.project.pk).status_code == 201


def test_invalid_key_is_400(cast):
    r = create_task(token_client(cast.member), "x" * 256, project=cast.project.pk)
    assert r.status_code == 400 and "idempotency_key" in api_errors(r) and not Task.objects.exists()


def test_keys_expire_after_24_hours_and_are_cleaned_up(cast):
    client = token_client(cast.member)
    create_task(client, "day", project=cast.project.pk)
    with time_machine.travel(timezone.now() + timedelta(hours=23), tick=False):
        assert create_task(client, "day", project=cast.project.pk)["Idempotent-Replayed"] == "true"
        assert idempotency_cleanup() == 0
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        assert idempotency_cleanup() == 1
        assert not create_task(client, "day", project=cast.project.pk).has_header("Idempotent-Replayed")
    assert Task.objects.count() == 2


def test_cleanup_has_a_seeded_schedule(db):
    from django_celery_beat.models import PeriodicTask

    from core.schedules import seed_schedules

    seed_schedules()
    assert PeriodicTask.objects.get(name="Cleanup Idempotency Keys").task == "core.cleanup_idempotency_keys"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_do_the_work_once(cast):
    """The first request is held inside its transaction. On PostgreSQL the second gets 409 at once and its
    retry after the first commits is a replay; SQLite serializes writers, so there the second waits for the
    first to commit and is answered with the replay."""
    entered, release = threading.Event(), threading.Event()

    def hold(sender, task, **kwargs):
        if not entered.is_set():
            entered.set()
            release.wait(20)

    signals.task_created.connect(hold, dispatch_uid="hold-first")
    results = {}

    def send(name):
        try:
            results[name] = create_task(token_client(cast.member), "race", project=cast.project.pk)
        finally:
            connection.close()

    try:
        first = threading.Thread(target=send, args=("first",))
        first.start()
        assert entered.wait(20)
        second = threading.Thread(target=send, args=("second",))
        second.start()
        if connection.vendor == "postgresql":
            second.join(20)
            assert results["second"].status_code == 409
            assert (
                results["second"].json()["errors"][0]["code"] == "idempotency_key_in_use"
                and results["second"]["Retry-After"]
            )
        else:
            time.sleep(0.5)  # the second is now waiting for SQLite's write lock
        release.set()
        first.join(20)
        second.join(20)
    finally:
        release.set()
        signals.task_created.disconnect(dispatch_uid="hold-first")
    assert results["first"].status_code == 201
    replay = (
        results["second"]
        if connection.vendor != "postgresql"
        else create_task(token_client(cast.member), "race", project=cast.project.pk)
    )
    assert replay.status_code == 201 and replay.content == results["first"].content
    assert Task.objects.count() == 1
