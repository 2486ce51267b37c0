"""Webhook deliveries under faults: a worker SIGKILLed mid-stream, and a receiver failing half its requests."""

import hashlib
import time

import pytest
from django.db import transaction

from core.schedules import seed_schedules
from tasks_app.tests.factories import ProjectFactory
from tests.support import Receiver, wait_until
from webhooks import signing
from webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.services import trigger_webhook

pytestmark = pytest.mark.faults


def _subscriptions(project, url, n):
    WebhookSubscription.objects.bulk_create(
        [
            WebhookSubscription(project=project, url=url, events=["task.created"], secret=signing.generate_secret())
            for _ in range(n)
        ]
    )


def _trigger(project, events):
    """`events` task.created events, each fanned out to every subscription; published on commit."""
    ids = []
    with transaction.atomic():
        for i in range(events):
            ids += trigger_webhook(project_id=project.pk, event_type="task.created", data={"task": {"id": i}})
    return ids


def test_worker_sigkilled_during_1000_deliveries_loses_none(local_stack):
    n = 1000
    # 100 ms per request and 10 in flight per batch (4 batches at once): ~3 s of sending, so the kill
    # lands mid-stream.
    receiver = Receiver(delay=0.1)
    # Shipped timings (no lease, sweep or schedule shortened); 10 requests in flight per batch instead of 25
    # only so the kill lands mid-stream.
    local_stack.env.update(WEBHOOK_CONCURRENCY="10")
    project = ProjectFactory()
    _subscriptions(project, receiver.url(), n)
    seed_schedules()
    started = time.monotonic()
    try:
        local_stack.worker("worker", queues="default,webhooks", concurrency=4)
        ids = _trigger(project, 1)  # one event, 1,000 subscriptions: 1,000 deliveries in 10 messages
        assert len(ids) == n
        wait_until(lambda: receiver.unique() >= 250, "the worker to be mid-stream", timeout=60, step=0.02)
        local_stack.kill("worker")  # SIGKILL to the process group: no ack, no cleanup, leases held
        killed_at = time.monotonic()
        receiver.delay = 0  # the slow receiver was only there to catch the worker mid-stream
        seen_at_kill = receiver.unique()
        in_doubt = WebhookDelivery.objects.filter(state=DeliveryState.PENDING).count()

        local_stack.worker("worker2", queues="default,webhooks", concurrency=4)
        # worker2's heartbeat declares the dead worker's holder dead (a TTL after its last beat, and once
        # worker2 has itself beaten for a TTL) and queues a sweep that re-publishes what it held.
        local_stack.beat()
        wait_until(
            lambda: not WebhookDelivery.objects.exclude(state=DeliveryState.DELIVERED).exists(),
            "every delivery to be delivered",
            timeout=75,
            step=0.5,
        )
        wait_until(lambda: receiver.unique() >= n, "the receiver to have seen every webhook-id", timeout=10, step=0.1)
        elapsed, recovery = time.monotonic() - started, time.monotonic() - killed_at
    finally:
        receiver.close()

    assert seen_at_kill < n and in_doubt > 0, "the kill did not happen mid-stream"
    expected = set(WebhookDelivery.objects.values_list("webhook_id", flat=True))
    assert len(expected) == n
    assert set(receiver.hits) == expected  # every id arrived, nothing foreign
    total = receiver.total()
    duplicates = total - n
    # Every duplicate is a re-send of a known id, so a receiver deduplicating on webhook-id sees each once.
    assert sorted(receiver.hits.values())[-1] <= 2
    print(
        f"\nFAULT worker-sigkill-webhooks: 1 event x {n} subscriptions, killed after {seen_at_kill} ids seen "
        f"({in_doubt} pending), lost 0/{n}, receiver hits {total}, duplicates {duplicates}/{n} "
        f"(all share a webhook-id), all delivered {recovery:.1f}s after the kill (a new worker started after "
        f"the kill; shipped timings), {elapsed:.1f}s"
    )


def _failures_for(webhook_id):
    """0, 1 or 2 failed attempts before success, fixed per id: on average one failure per success."""
    return _hash(webhook_id) % 3


def _hash(webhook_id):
    return int(hashlib.sha256(webhook_id.encode()).hexdigest(), 16)


def _fails_with_500(webhook_id, attempt):
    """Each failed attempt is a 500 or a timeout, alternating from a per-id start."""
    return (attempt + _hash(webhook_id) // 3) % 2 == 1


def test_receiver_failing_half_its_requests_gets_every_delivery_with_reasons(local_stack):
    subs, events = 100, 2
    n = subs * events

    def answer(request):
        webhook_id, attempt = request["webhook_id"], request["n"]
        if attempt > _failures_for(webhook_id):
            return 200, 0
        # Alternate the failure kind per id: 500, or no answer within the 1 s client timeout.
        return (500, 0) if _fails_with_500(webhook_id, attempt) else (200, 2.0)

    receiver = Receiver(answer=answer)
    local_stack.env.update(WEBHOOK_RETRY_SCHEDULE="1,1,1,1", WEBHOOK_RETRY_JITTER="0", WEBHOOK_TIMEOUT_SECONDS="1")
    project = ProjectFactory()
    _subscriptions(project, receiver.url(), subs)
    started = time.monotonic()
    try:
        local_stack.worker("worker", queues="default,webhooks", concurrency=4)
        _trigger(project, events)
        wait_until(
            lambda: not WebhookDelivery.objects.exclude(state=DeliveryState.DELIVERED).exists(),
            "every delivery to succeed",
            timeout=75,
            step=0.5,
        )
        elapsed = time.monotonic() - started
    finally:
        receiver.close()

    deliveries = list(WebhookDelivery.objects.prefetch_related("attempt_log"))
    assert len(deliveries) == n
    reasons = {}
    for d in deliveries:
        fails = _failures_for(d.webhook_id)
        log = list(d.attempt_log.all())
        assert d.attempts == len(log) == fails + 1 == receiver.hits[d.webhook_id], d.webhook_id
        assert [a.attempt for a in log] == list(range(1, fails + 2))
        assert [a.success for a in log] == [False] * fails + [True]
        assert log[-1].status_code == 200
        for a in log[:-1]:
            if _fails_with_500(d.webhook_id, a.attempt):
                assert (a.status_code, a.error_class) == (500, "HTTP 500")
            else:
                assert a.status_code is None and a.error_class in ("Timeout", "ReadTimeout"), a.error_class
            reasons[a.error_class] = reasons.get(a.error_class, 0) + 1
    total = receiver.total()
    failed = WebhookAttempt.objects.filter(success=False).count()
    assert total == WebhookAttempt.objects.count() == n + failed  # every request has its recorded attempt
    assert 0.35 < failed / total < 0.65  # the receiver really failed about half its requests
    print(
        f"\nFAULT flaky-receiver: delivered {n}/{n}, requests {total}, failed {failed} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}), max attempts "
        f"{max(d.attempts for d in deliveries)}, {elapsed:.1f}s"
    )
