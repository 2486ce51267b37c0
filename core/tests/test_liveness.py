"""Claims judged by their holder's liveness (core/liveness.py), and the sweeps that follow a death or an outage."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core import enqueue, liveness, outbox
from notifications import sending
from notifications.models import EmailState
from notifications.tests.factories import NotificationFactory
from tasks_app.tests.factories import ProjectFactory
from webhooks import delivery as webhook_delivery
from webhooks import signing
from webhooks.models import DeliveryState, WebhookDelivery, WebhookSubscription


@pytest.fixture
def judge_ready(redis_clean, monkeypatch):
    """This process is a holder whose heartbeat has been continuous for a whole TTL (so it may judge)."""
    liveness.start()
    monkeypatch.setattr(liveness._heartbeat, "continuous_since", time.monotonic() - 3600)
    return redis_clean


def _holder(redis, name, *, alive):
    redis.zadd(liveness.HOLDERS_KEY, {name: time.time()})
    if alive:
        redis.set(liveness.ALIVE_PREFIX + name, "host:1", ex=60)


def _sending(token, **fields):
    return NotificationFactory(
        email_state=EmailState.SENDING, email_claimed_at=timezone.now(), email_claim_token=token, **fields
    )


def test_judge_declares_only_holders_whose_key_expired(judge_ready):
    _holder(judge_ready, "deadbeef", alive=False)
    _holder(judge_ready, "a1a1a1a1", alive=True)
    assert liveness.judge() == ["deadbeef"]
    assert liveness.judge() == []  # declared once, by one judge
    assert liveness.dead_holders() == ["deadbeef"]


def test_no_judgment_before_a_whole_ttl_of_own_heartbeat(redis_clean, monkeypatch):
    liveness.start()
    monkeypatch.setattr(liveness._heartbeat, "continuous_since", time.monotonic())  # e.g. Redis just came back
    _holder(redis_clean, "deadbeef", alive=False)
    assert liveness.judge() == []
    assert liveness.dead_holders() == []


def test_a_failed_heartbeat_breaks_the_run(redis_clean, monkeypatch):
    liveness.start()
    monkeypatch.setattr(liveness._heartbeat, "continuous_since", time.monotonic() - 3600)
    assert liveness.can_judge()
    monkeypatch.setattr(liveness, "_client", lambda: (_ for _ in ()).throw(ConnectionError("down")))
    assert liveness._heartbeat.beat() is False
    assert not liveness.can_judge()


def test_a_holder_declared_dead_carries_on_under_a_new_id(judge_ready):
    old = liveness.holder_id()
    judge_ready.zadd(liveness.DEAD_KEY, {old: time.time()})
    assert liveness._heartbeat.beat()
    assert liveness.holder_id() != old
    assert judge_ready.exists(liveness.ALIVE_PREFIX + liveness.holder_id())


@pytest.mark.django_db
def test_email_claim_of_a_dead_worker_is_retaken_at_once(judge_ready):
    _holder(judge_ready, "deadbeef", alive=False)
    liveness.judge()
    row = _sending("deadbeef.some-task-id")
    result = sending.notification_email_deliver(notification_id=row.pk, claim_token="retry-task")
    assert result["outcome"] == EmailState.SENT and len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.email_claim_token == ""


@pytest.mark.django_db
def test_email_claim_of_a_live_slow_worker_is_never_taken(judge_ready):
    _holder(judge_ready, "a1a1a1a1", alive=True)
    assert liveness.judge() == []
    row = _sending("a1a1a1a1.some-task-id")
    result = sending.notification_email_deliver(notification_id=row.pk, claim_token="other-task")
    assert result["outcome"] == "nothing_to_do" and mail.outbox == []


@pytest.mark.django_db
def test_claim_token_names_this_process_and_a_retry_elsewhere_takes_back_its_own_claim(judge_ready):
    row = _sending("0f0f0f0f.task-1")  # a claim of task-1, taken in another (live) process
    result = sending.notification_email_deliver(notification_id=row.pk, claim_token="task-1")
    assert result["outcome"] == EmailState.SENT


@pytest.mark.django_db
def test_webhook_batch_of_a_dead_worker_is_retaken_and_sweeps_republish_it_whatever_its_age(judge_ready):
    project = ProjectFactory()
    sub = WebhookSubscription.objects.create(
        project=project, url="http://127.0.0.1:9/hook", events=["task.created"], secret=signing.generate_secret()
    )
    far = timezone.now() + timedelta(hours=1)
    dead = WebhookDelivery.objects.create(
        subscription=sub, event_type="task.created", body="{}", lease_until=far, claim_token="deadbeef.x"
    )
    live = WebhookDelivery.objects.create(
        subscription=sub, event_type="task.created", body="{}", lease_until=far, claim_token="a1a1a1a1.y"
    )
    _holder(judge_ready, "deadbeef", alive=False)
    _holder(judge_ready, "a1a1a1a1", alive=True)
    liveness.judge()
    # The periodic sweep leaves young rows alone, but rows of a dead holder go out whatever their age.
    report = outbox.sweep()
    assert report["webhooks.delivery"] == 1
    dead.refresh_from_db()
    assert dead.enqueued_at is not None
    rows = webhook_delivery.claim(delivery_ids=[dead.pk, live.pk])
    assert [r.pk for r in rows] == [dead.pk]
    assert rows[0].claim_token.startswith(liveness.holder_id() + ".") and len(rows[0].claim_token) == 32
    assert rows[0].state == DeliveryState.PENDING


@pytest.mark.django_db
def test_sweep_before_takes_every_pending_row_published_before_then(redis_clean):
    row = NotificationFactory(email_state=EmailState.PENDING)
    assert outbox.sweep()["notifications.email"] == 0  # younger than OUTBOX_SWEEP_AFTER_SECONDS
    assert outbox.sweep(before=time.time() + 1)["notifications.email"] == 1
    row.refresh_from_db()
    assert row.enqueued_at is not None
    # Several sweeps are queued when the broker comes back: a row one of them re-published is not re-published
    # by the next (until OUTBOX_SWEEP_AFTER_SECONDS have passed).
    assert outbox.sweep(before=time.time() + 1)["notifications.email"] == 0


def test_first_publish_after_an_outage_queues_a_sweep(redis_clean, monkeypatch, settings):
    sent = []
    from taskmgmt.celery import app

    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw.get("kwargs"))))
    enqueue.breaker.reset()
    assert enqueue.publish_now_rollback_unsafe("core.ping")
    assert [name for name, _ in sent] == ["core.ping"]  # no outage, no sweep

    enqueue.breaker.trip()
    enqueue.breaker.open_until = 0  # the breaker's time is up: the next publish goes through
    sent.clear()
    assert enqueue.publish_now_rollback_unsafe("core.ping")
    assert [name for name, _ in sent] == ["core.ping", "core.sweep_pending"]
    assert sent[1][1]["before"] <= time.time()
    sent.clear()
    assert enqueue.publish_now_rollback_unsafe("core.ping")
    assert [name for name, _ in sent] == ["core.ping"]  # once per outage
