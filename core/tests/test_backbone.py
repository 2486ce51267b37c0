"""The Celery backbone against real Redis and real workers: routing, results, serialization, durability."""

import json
import time

import pytest
from django.conf import settings
from django.db import transaction
from django_celery_results.models import TaskResult

from core.enqueue import enqueue_on_commit, publish_now_rollback_unsafe
from core.registry import OUR_TASKS, SPEC_TASKS
from tests.support import wait_until

pytestmark = pytest.mark.worker


def _queued(redis, queue):
    return [json.loads(raw)["headers"]["task"] for raw in redis.lrange(queue, 0, -1)]


def test_configuration_is_json_only_utc_and_bounded(celery_app):
    conf = celery_app.conf
    assert (conf.task_serializer, conf.result_serializer, list(conf.accept_content)) == ("json", "json", ["json"])
    assert conf.timezone == "UTC" and conf.enable_utc
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.task_time_limit < settings.BROKER_VISIBILITY_TIMEOUT
    assert conf.broker_transport_options["visibility_timeout"] == settings.BROKER_VISIBILITY_TIMEOUT
    assert conf.beat_schedule == {}
    assert {q.name for q in conf.task_queues} == set(settings.QUEUE_NAMES)


@pytest.mark.parametrize("task_name,queue", sorted({**SPEC_TASKS, **OUR_TASKS}.items()))
def test_every_task_name_routes_to_its_spec_queue(celery_app, task_name, queue):
    assert celery_app.amqp.router.route({}, task_name)["queue"].name == queue


def test_registered_tasks_have_stable_spec_names(celery_app):
    ours = {name for name in celery_app.tasks if not name.startswith("celery.")}
    unknown = (
        ours - set(SPEC_TASKS) - set(OUR_TASKS) - {"core.testapp_echo", "core.testapp_fail", "core.testapp_slow_echo"}
    )
    assert not unknown, f"tasks without a registered stable name: {unknown}"


def test_worker_on_one_queue_receives_only_that_queue(start_celery_worker, celery_app, redis_clean):
    with start_celery_worker(queues=["notifications"]):
        other = publish_now_rollback_unsafe("core.ping", queue="analytics")
        mine = celery_app.send_task("core.ping", queue="notifications")
        assert other and mine.get(timeout=20) == "pong"
        time.sleep(1)  # give the worker every chance to (wrongly) take the analytics message
        assert _queued(redis_clean, "analytics") == ["core.ping"]
    assert TaskResult.objects.count() == 1


def test_result_is_stored_with_masked_arguments(celery_worker, celery_app):
    assert publish_now_rollback_unsafe("core.ping", kwargs={"payload": "alice@example.com whsec_c2VjcmV0"})
    row = wait_until(lambda: TaskResult.objects.filter(task_name="core.ping", status="SUCCESS").first(), "the result")
    stored = " ".join(str(v) for v in (row.task_args, row.task_kwargs, row.result))
    assert "alice@example.com" not in stored and "whsec_" not in stored
    assert "***" in row.task_kwargs


def test_pickle_message_is_refused(celery_worker, celery_app, redis_clean):
    refused = celery_app.send_task("core.ping", serializer="pickle")
    time.sleep(2)
    assert refused.state == "PENDING"
    assert not TaskResult.objects.filter(task_id=refused.id).exists()
    # The worker is still healthy and the refused message is gone, not requeued.
    assert celery_app.send_task("core.ping").get(timeout=20) == "pong"
    assert redis_clean.llen("default") == 0 and not redis_clean.hlen("unacked")


def test_rollback_enqueues_nothing_and_commit_enqueues_once(transactional_db, redis_clean):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            enqueue_on_commit("core.ping", queue="default")
            raise RuntimeError("boom")
    assert redis_clean.llen("default") == 0
    with transaction.atomic():
        enqueue_on_commit("core.ping", queue="default")
        assert redis_clean.llen("default") == 0  # not before commit
    assert _queued(redis_clean, "default") == ["core.ping"]


def test_task_arguments_must_be_ids():
    with pytest.raises(TypeError):
        publish_now_rollback_unsafe("core.ping", args=[object()])
    with pytest.raises(ValueError):
        publish_now_rollback_unsafe("core.ping", countdown=settings.MAX_COUNTDOWN_SECONDS + 1)


def test_broker_down_request_commits_row_and_sweep_delivers_later(
    transactional_db, broker_down, start_celery_worker, celery_app, settings
):
    from tests.testapp.models import Echo
    from tests.testapp.services import echo_create

    started = time.monotonic()
    echo = echo_create()
    elapsed = time.monotonic() - started
    # A generous bound that only catches hanging (unbounded retries would block for minutes).
    assert elapsed < 6, f"publish with the broker down took {elapsed:.1f}s"
    echo.refresh_from_db()
    assert echo.state == Echo.PENDING

    broker_down()  # the broker is back
    settings.OUTBOX_SWEEP_AFTER_SECONDS = 0
    with start_celery_worker():
        assert celery_app.send_task("core.sweep_pending").get(timeout=20)["testapp.echo"] == 1
        wait_until(lambda: Echo.objects.get(pk=echo.pk).state == Echo.DONE, "the swept row to be processed")
        # A second sweep finds nothing pending, and a duplicate delivery does not process twice.
        assert celery_app.send_task("core.sweep_pending").get(timeout=20)["testapp.echo"] == 0
        assert celery_app.send_task("core.testapp_echo", args=[echo.pk]).get(timeout=20) == {"processed": 0}
    assert Echo.objects.get(pk=echo.pk).times_processed == 1


def test_after_a_failed_publish_the_next_ones_skip_the_broker(transactional_db, broker_down, celery_app, monkeypatch):
    from tests.testapp.models import Echo
    from tests.testapp.services import echo_create

    calls = []
    real_send = celery_app.send_task
    monkeypatch.setattr(celery_app, "send_task", lambda *a, **k: calls.append(a[0]) or real_send(*a, **k))
    for _ in range(5):
        echo_create()
    assert calls == ["core.testapp_echo"]  # only the first request paid for the outage
    assert Echo.objects.filter(state=Echo.PENDING).count() == 5
    broker_down()  # back: publishing resumes at once
    echo_create()
    assert len(calls) == 2


def test_sweep_leaves_fresh_rows_alone(transactional_db, redis_clean):
    from core.outbox import sweep
    from tests.testapp.services import echo_create

    echo_create()
    redis_clean.delete("default")
    assert sweep()["testapp.echo"] == 0  # younger than OUTBOX_SWEEP_AFTER_SECONDS
    assert redis_clean.llen("default") == 0


def test_reconnect_sweep_is_queued_even_when_a_task_tripped_the_breaker(redis_clean):
    """A worker's tasks share its publish breaker (threads pool). One tripped during the outage must not
    swallow the sweep the consumer queues when it reconnects (which the rows of the outage wait for)."""
    from core import enqueue
    from core.worker import queue_sweep

    enqueue.breaker.trip()  # as if a task's publish had failed a moment before the broker came back
    try:
        assert queue_sweep(time.time(), attempts=1)
    finally:
        enqueue.breaker.reset()
    queue = celery_queue_of("core.sweep_pending")
    assert _queued(redis_clean, queue) == ["core.sweep_pending"]


def celery_queue_of(task_name):
    from taskmgmt.celery import app

    return app.amqp.router.route({}, task_name)["queue"].name


def test_a_closed_redis_channel_fails_an_ack_as_a_connection_error(settings):
    """An ack of a message whose channel closed when the broker was lost must be a connection error (logged,
    recoverable), not kombu's AttributeError, which made Celery shut the worker down mid-outage."""
    from kombu import Connection
    from redis.exceptions import ConnectionError as RedisConnectionError

    import taskmgmt.celery  # noqa: F401  (installs the guard, as every process does)

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the Redis transport's channel")
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        channel.close()
        with pytest.raises(RedisConnectionError):
            channel.qos.ack("a-delivery-tag")
    with Connection(settings.CELERY_BROKER_URL) as conn:  # released while its channel restores unacked messages
        channel = conn.channel()
        channel._disconnect_pools()
        channel.connection.client = None
        with pytest.raises(RedisConnectionError):
            channel.qos.restore_unacked()
