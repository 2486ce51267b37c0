"""End to end through a real Celery worker over Redis and real receivers on 127.0.0.1."""

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from tests.support import wait_until
from webhooks.models import DeliveryState, WebhookDelivery
from webhooks.services import WebhookService

pytestmark = pytest.mark.worker


def test_event_retry_redeliver_ping_and_retry_scan(start_celery_worker, cast, api, receiver, fast_retries):
    client = api(cast.owner)
    created = client.post(
        "/api/v1/webhooks/",
        {"project": cast.project.pk, "url": receiver.url(), "events": ["task.created", "task.updated"]},
        format="json",
    ).json()
    hook = Webhook(created["secret"])
    receiver.respond((503, {}, "busy"))
    with start_celery_worker(queues=["webhooks"]):
        task = client.post("/api/v1/tasks/", {"project": cast.project.pk, "title": "Ship"}, format="json").json()
        # First attempt fails, the 1.2 s retry rides a countdown and succeeds.
        first, second = receiver.wait_for(2)
        delivery = WebhookDelivery.objects.get()
        wait_until(lambda: WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).exists(), what="delivered")
        assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == delivery.webhook_id
        assert first["headers"]["webhook-timestamp"] != second["headers"]["webhook-timestamp"]
        payload = hook.verify(second["body"], second["headers"])
        assert payload["type"] == "task.created" and payload["data"]["task"]["id"] == task["id"]
        assert list(delivery.attempt_log.values_list("attempt", "status_code")) == [(1, 503), (2, 200)]

        base = f"/api/v1/webhooks/{created['id']}/"
        assert client.post(f"{base}deliveries/{delivery.pk}/redeliver/").status_code == 202
        redelivered = receiver.wait_for(3)[2]
        assert redelivered["headers"]["webhook-id"] == delivery.webhook_id
        assert redelivered["body"] == second["body"]

        assert client.post(f"{base}ping/").status_code == 202
        assert hook.verify(receiver.wait_for(4)[3]["body"], receiver.requests[3]["headers"])["type"] == "webhook.ping"

        # A long-delay retry is picked up by retry_failed_webhooks (the DB-driven path).
        receiver.respond((429, {"Retry-After": "3600"}, ""))
        client.patch(f"/api/v1/tasks/{task['id']}/", {"title": "Ship it"}, format="json")
        receiver.wait_for(5)
        updated = wait_until(
            lambda: WebhookDelivery.objects.filter(event_type="task.updated", attempts=1).first(),
            what="the failed task.updated attempt",
        )
        assert updated.next_attempt_at > timezone.now() + timedelta(minutes=59)
        WebhookDelivery.objects.filter(pk=updated.pk).update(next_attempt_at=timezone.now())
        WebhookService.retry_failed_deliveries()
        retried = receiver.wait_for(6)[5]
        assert retried["headers"]["webhook-id"] == updated.webhook_id
        assert hook.verify(retried["body"], retried["headers"])["data"]["changes"] == {"title": ["Ship", "Ship it"]}
        wait_until(
            lambda: WebhookDelivery.objects.filter(pk=updated.pk, state=DeliveryState.DELIVERED).exists(),
            what="retried delivery",
        )
    assert len(receiver.requests) == 6
    # Task messages and results carry ids and counts only: never the secret or the body.
    from django_celery_results.models import TaskResult

    results = list(TaskResult.objects.filter(task_name="webhooks.deliver_webhook"))
    assert results and all(r.status == "SUCCESS" for r in results)
    secret = created["secret"].removeprefix("whsec_")
    assert not any(secret in f"{r.task_args}{r.task_kwargs}{r.result}" for r in results)
