"""deliver_webhook's task body against real HTTP receivers on 127.0.0.1 (no worker needed here)."""

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from tasks_app.services.comments import comment_create
from tasks_app.services.tasks import task_create, task_delete, task_update
from tasks_app.tests.factories import ProjectFactory, TaskFactory
from webhooks import delivery, services, signing
from webhooks.models import DeliveryState, Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.tasks import cleanup_old_webhook_deliveries, deliver_webhook, retry_failed_webhooks
from webhooks.tests.factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def verify(sub_secret, request):
    return Webhook(signing.display_secret(sub_secret)).verify(request["body"], request["headers"])


def test_delivered_request_verifies_with_standardwebhooks(receiver):
    sub = SubscriptionFactory(url=receiver.url())
    d = DeliveryFactory(subscription=sub)
    report = deliver_webhook([d.pk])
    assert report == {"delivered": 1, "retrying": 0, "failed": 0, "cancelled": 0}
    d.refresh_from_db()
    assert d.state == DeliveryState.DELIVERED and d.attempts == 1 and d.delivered_at
    req = receiver.requests[0]
    assert req["body"] == d.body.encode()
    assert verify(sub.secret, req) == json.loads(d.body)
    assert req["headers"]["webhook-id"] == d.webhook_id
    assert abs(int(req["headers"]["webhook-timestamp"]) - time.time()) < 5
    expected = hmac.new(base64.b64decode(sub.secret), req["body"], hashlib.sha256).hexdigest()
    assert req["headers"]["X-Webhook-Signature-256"] == f"sha256={expected}"
    assert req["headers"]["Content-Type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.display_secret(signing.generate_secret())).verify(req["body"], req["headers"])
    (attempt,) = WebhookAttempt.objects.filter(delivery=d)
    assert (attempt.attempt, attempt.status_code, attempt.success, attempt.response_body) == (1, 200, True, "ok")


def test_failure_records_attempt_and_retry_keeps_webhook_id_with_fresh_timestamp(receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE, settings.WEBHOOK_RETRY_JITTER = (30, 30), 0
    sub = SubscriptionFactory(url=receiver.url())
    d = DeliveryFactory(subscription=sub)
    receiver.respond((500, {}, "x" * 5000))
    before = timezone.now()
    assert deliver_webhook([d.pk])["retrying"] == 1
    d.refresh_from_db()
    assert d.state == DeliveryState.PENDING and d.attempts == 1 and d.last_status_code == 500
    assert before + timedelta(seconds=30) <= d.next_attempt_at <= timezone.now() + timedelta(seconds=30)
    attempt = d.attempt_log.get()
    assert attempt.status_code == 500 and attempt.error_class == "HTTP 500" and not attempt.success
    assert len(attempt.response_body) == 1024  # truncated
    # A duplicate message before the retry is due sends nothing.
    assert deliver_webhook([d.pk])["retrying"] == 0 and len(receiver.requests) == 1
    time.sleep(1.1)  # webhook-timestamp has whole seconds: the retry's is a later one
    WebhookDelivery.objects.filter(pk=d.pk).update(next_attempt_at=timezone.now())  # the retry is due
    assert deliver_webhook([d.pk])["delivered"] == 1
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == d.webhook_id
    assert first["headers"]["webhook-timestamp"] != second["headers"]["webhook-timestamp"]
    assert first["body"] == second["body"]
    verify(sub.secret, second)
    assert list(d.attempt_log.values_list("attempt", "status_code")) == [(1, 500), (2, 200)]


def test_delivered_delivery_is_not_resent_by_a_duplicate_message(receiver):
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    deliver_webhook([d.pk])
    assert deliver_webhook([d.pk]) == {"delivered": 0, "retrying": 0, "failed": 0, "cancelled": 0}
    assert len(receiver.requests) == 1


def test_leased_delivery_is_not_sent_twice(receiver):
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    assert [r.pk for r in delivery.claim(delivery_ids=[d.pk])] == [d.pk]
    assert deliver_webhook([d.pk])["delivered"] == 0 and receiver.requests == []


def test_redirect_is_a_failure_and_is_not_followed(receiver, canary, fast_retries):
    receiver.respond((302, {"Location": canary.url("/internal")}, ""))
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    assert deliver_webhook([d.pk])["retrying"] == 1
    d.refresh_from_db()
    assert d.last_status_code == 302 and d.attempt_log.get().error_class == "HTTP 302"
    time.sleep(0.3)
    assert canary.requests == []


def test_gone_disables_subscription_and_notifies_owner(receiver):
    from notifications.models import Notification

    sub = SubscriptionFactory(url=receiver.url())
    d, other = DeliveryFactory(subscription=sub), DeliveryFactory(subscription=sub)
    receiver.respond((410, {}, "gone"))
    deliver_webhook([d.pk])
    d.refresh_from_db(), sub.refresh_from_db(), other.refresh_from_db()
    assert d.state == DeliveryState.FAILED and not sub.is_active and "410" in sub.disabled_reason
    assert other.state == DeliveryState.CANCELLED
    note = Notification.objects.get(recipient=sub.project.owner, kind="webhook_disabled")
    assert note.data["subscription_id"] == sub.pk


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(receiver, fast_retries, status):
    receiver.respond((status, {"Retry-After": "600"}, "slow down"))
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    deliver_webhook([d.pk])
    d.refresh_from_db()
    assert d.next_attempt_at >= timezone.now() + timedelta(seconds=595)


def test_retry_after_is_ignored_for_other_statuses(receiver, fast_retries):
    receiver.respond((500, {"Retry-After": "600"}, ""))
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    deliver_webhook([d.pk])
    d.refresh_from_db()
    assert d.next_attempt_at <= timezone.now() + timedelta(seconds=2)


def test_default_schedule_with_jitter():
    delays = [delivery.retry_delay(attempt=n) for n in range(1, 11)]
    base = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert delays[-1] is None
    for delay, b in zip(delays, base, strict=False):
        assert 0.9 * b <= delay <= 1.1 * b


def test_timeout_is_recorded(receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.respond((200, {}, "late", 2))
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    deliver_webhook([d.pk])
    attempt = WebhookAttempt.objects.get(delivery=d)
    assert attempt.status_code is None and attempt.error_class in ("Timeout", "ReadTimeout")


def test_connection_refused_is_recorded(fast_retries):
    d = DeliveryFactory(subscription=SubscriptionFactory(url="http://127.0.0.1:9/hook"))
    deliver_webhook([d.pk])
    assert WebhookAttempt.objects.get(delivery=d).error_class == "ConnectError"


def test_exhausted_deliveries_disable_after_n_in_a_row_and_notify_owner(receiver, settings):
    from notifications.models import Notification

    settings.WEBHOOK_RETRY_SCHEDULE = ()
    settings.WEBHOOK_DISABLE_AFTER_EXHAUSTED = 2
    sub = SubscriptionFactory(url=receiver.url())
    receiver.respond((500, {}, ""), (200, {}, ""), (500, {}, ""), (500, {}, ""))
    for expected_failures in (1, 0, 1):
        deliver_webhook([DeliveryFactory(subscription=sub).pk])
        sub.refresh_from_db()
        assert sub.consecutive_failures == expected_failures and sub.is_active
    assert not Notification.objects.filter(kind="webhook_disabled").exists()
    d = DeliveryFactory(subscription=sub)
    deliver_webhook([d.pk])
    sub.refresh_from_db(), d.refresh_from_db()
    assert d.state == DeliveryState.FAILED and d.attempts == 1
    assert not sub.is_active and sub.consecutive_failures == 2
    assert Notification.objects.get(kind="webhook_disabled").recipient == sub.project.owner


def test_rotation_signs_with_both_secrets_during_grace(receiver, cast):
    sub = SubscriptionFactory(project=cast.project, url=receiver.url())
    old = sub.secret
    sub, shown = services.subscription_rotate_secret(subscription=sub, actor=cast.owner)
    assert shown == signing.display_secret(sub.secret) and sub.secret != old
    deliver_webhook([DeliveryFactory(subscription=sub).pk])
    req = receiver.requests[0]
    assert len(req["headers"]["webhook-signature"].split(" ")) == 2
    verify(old, req)
    verify(sub.secret, req)
    # The body-only header covers the grace period too: current secret first, then the old one.
    body_macs = [
        "sha256=" + hmac.new(base64.b64decode(secret), req["body"], hashlib.sha256).hexdigest()
        for secret in (sub.secret, old)
    ]
    assert req["headers"]["X-Webhook-Signature-256"].split(" ") == body_macs
    WebhookSubscription.objects.filter(pk=sub.pk).update(previous_secret_expires_at=timezone.now())
    deliver_webhook([DeliveryFactory(subscription=sub).pk])
    req = receiver.requests[1]
    assert len(req["headers"]["webhook-signature"].split(" ")) == 1
    mac = hmac.new(base64.b64decode(sub.secret), req["body"], hashlib.sha256).hexdigest()
    assert req["headers"]["X-Webhook-Signature-256"] == f"sha256={mac}"
    with pytest.raises(WebhookVerificationError):
        verify(old, req)


def test_inactive_subscription_cancels_delivery(receiver):
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url(), is_active=False))
    assert deliver_webhook([d.pk])["cancelled"] == 1
    d.refresh_from_db()
    assert d.state == DeliveryState.CANCELLED and receiver.requests == []


def test_batch_is_sent_concurrently_to_many_subscriptions(receiver, settings):
    settings.WEBHOOK_CONCURRENCY = 4
    receiver.respond(*[(200, {}, "ok", 0.3)] * 8)
    ds = [DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url(f"/h{i}"))) for i in range(8)]
    assert deliver_webhook([d.pk for d in ds])["delivered"] == 8
    # One task, requests overlapping at the receiver, never more than the configured bound.
    assert 1 < receiver.max_in_flight <= 4
    assert sorted(r["path"] for r in receiver.requests) == sorted(f"/h{i}" for i in range(8))


def test_retry_scan_queues_due_deliveries_once(redis_clean):
    sub = SubscriptionFactory()
    due = DeliveryFactory(subscription=sub, attempts=1, next_attempt_at=timezone.now() - timedelta(seconds=1))
    DeliveryFactory(subscription=sub, attempts=1, next_attempt_at=timezone.now() + timedelta(hours=1))
    DeliveryFactory(subscription=sub, attempts=0)  # first attempt: the outbox sweep's job
    DeliveryFactory(
        subscription=sub, attempts=1, state=DeliveryState.DELIVERED, next_attempt_at=timezone.now() - timedelta(hours=1)
    )
    assert retry_failed_webhooks() == {"queued": 1}
    due.refresh_from_db()
    assert due.enqueued_at is not None
    assert retry_failed_webhooks() == {"queued": 0}
    assert redis_clean.llen("webhooks") == 1
    message = json.loads(redis_clean.lindex("webhooks", 0))
    assert json.loads(base64.b64decode(message["body"]))[0] == [[due.pk]]


def test_retry_scan_queues_first_attempts_whose_worker_died_in_one_batch(redis_clean):
    sub = SubscriptionFactory()
    lapsed = [DeliveryFactory(subscription=sub, lease_until=timezone.now() - timedelta(seconds=1)) for _ in range(3)]
    DeliveryFactory(subscription=sub, lease_until=timezone.now() + timedelta(minutes=5))  # still being sent
    DeliveryFactory(subscription=sub)  # never claimed: its message is on its way (or the sweep's job)
    assert retry_failed_webhooks() == {"queued": 3}
    assert retry_failed_webhooks() == {"queued": 0}
    assert redis_clean.llen("webhooks") == 1
    message = json.loads(redis_clean.lindex("webhooks", 0))
    assert sorted(json.loads(base64.b64decode(message["body"]))[0][0]) == sorted(d.pk for d in lapsed)


def test_lost_first_attempt_is_republished_by_the_outbox_sweep(redis_clean):
    from core import outbox

    stale = DeliveryFactory(created_at=timezone.now() - timedelta(minutes=10))
    DeliveryFactory()  # fresh: its own message is still on its way
    DeliveryFactory(created_at=timezone.now() - timedelta(minutes=10), state=DeliveryState.DELIVERED)
    assert outbox.sweep()["webhooks.delivery"] == 1
    message = json.loads(redis_clean.lindex("webhooks", 0))
    assert json.loads(base64.b64decode(message["body"]))[0] == [[stale.pk]]


def test_outbox_sweep_leaves_rows_under_a_live_lease(redis_clean):
    from core import outbox

    old = timezone.now() - timedelta(minutes=10)
    DeliveryFactory(created_at=old, lease_until=timezone.now() + timedelta(minutes=5))  # being sent right now
    lapsed = DeliveryFactory(created_at=old, lease_until=timezone.now() - timedelta(seconds=1))  # its worker died
    assert outbox.sweep()["webhooks.delivery"] == 1
    message = json.loads(redis_clean.lindex("webhooks", 0))
    assert json.loads(base64.b64decode(message["body"]))[0] == [[lapsed.pk]]


def test_cleanup_deletes_old_finished_deliveries_in_batches():
    old = timezone.now() - timedelta(days=31)
    sub = SubscriptionFactory()
    doomed = [
        DeliveryFactory(subscription=sub, state=s, finished_at=old)
        for s in (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.DELIVERED)
    ]
    WebhookAttempt.objects.create(delivery=doomed[0], attempt=1, started_at=old)
    kept = [
        DeliveryFactory(subscription=sub, state=DeliveryState.DELIVERED, finished_at=timezone.now()),
        DeliveryFactory(subscription=sub, state=DeliveryState.PENDING),
        DeliveryFactory(subscription=sub, state=DeliveryState.CANCELLED, finished_at=old),
    ]
    assert services.cleanup_old_deliveries(batch=2) == 3
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {d.pk for d in kept}
    assert not WebhookAttempt.objects.exists()
    assert cleanup_old_webhook_deliveries() == {"deleted": 0}


class TestEvents:
    def test_task_events_write_deliveries_in_the_same_transaction(self, cast):
        wanted = SubscriptionFactory(project=cast.project, events=[Event.TASK_CREATED, Event.TASK_UPDATED])
        SubscriptionFactory(project=cast.project, events=[Event.COMMENT_CREATED])
        SubscriptionFactory(project=cast.project, is_active=False)
        SubscriptionFactory(project=ProjectFactory())
        task = task_create(actor=cast.owner, project=cast.project, title="Launch")
        task_update(task=task, actor=cast.owner, data={"title": "Launch v2", "priority": 4})
        created, updated = WebhookDelivery.objects.order_by("id")
        assert {created.subscription_id, updated.subscription_id} == {wanted.pk}
        c, u = json.loads(created.body), json.loads(updated.body)
        assert c["type"] == "task.created" and c["data"]["task"]["version"] == 1 and "timestamp" in c
        assert u["type"] == "task.updated" and u["data"]["task"]["version"] == 2
        assert u["data"]["changes"] == {"title": ["Launch", "Launch v2"], "priority": [2, 4]}
        assert created.webhook_id != updated.webhook_id

    def test_rolled_back_change_writes_no_delivery(self, cast):
        SubscriptionFactory(project=cast.project)
        with pytest.raises(RuntimeError), transaction.atomic():
            task_create(actor=cast.owner, project=cast.project, title="x")
            raise RuntimeError
        assert not WebhookDelivery.objects.exists()

    def test_assign_complete_comment_delete_events(self, cast):
        SubscriptionFactory(project=cast.project)
        task = TaskFactory(project=cast.project)
        task_update(task=task, actor=cast.owner, data={"assignee": cast.member, "status": "done"})
        comment_create(task=task, actor=cast.owner, body="hi")
        task_delete(task=task, actor=cast.owner)
        types = list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))
        assert types == ["task.updated", "task.assigned", "task.completed", "comment.created", "task.deleted"]
        deleted = json.loads(WebhookDelivery.objects.get(event_type="task.deleted").body)
        assert deleted["data"]["task"]["id"] == task.pk

    def test_one_event_fans_out_in_batches(self, cast, settings, django_capture_on_commit_callbacks):
        settings.WEBHOOK_BATCH_SIZE = 2
        for _ in range(5):
            SubscriptionFactory(project=cast.project, events=[Event.TASK_CREATED])
        with django_capture_on_commit_callbacks() as callbacks:
            ids = services.WebhookService.trigger_webhook(
                project_id=cast.project.pk, event_type="task.created", data={"task": {"id": 1}}
            )
        assert len(ids) == 5 and len(callbacks) == 3
        bodies = set(WebhookDelivery.objects.values_list("body", flat=True))
        assert len(bodies) == 1
