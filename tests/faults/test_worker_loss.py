"""One of two workers SIGKILLed mid-stream, shipped timings: the other redoes its emails and webhooks in seconds.

The killed worker holds claims (emails being sent, webhook batches leased for CELERY_TASK_TIME_LIMIT +
60 s) and, on Redis, prefetched messages that stay unacked for the visibility timeout (1 h); RabbitMQ
requeues those as soon as the connection drops. Its
liveness key expires after LIVENESS_TTL_SECONDS; the surviving worker's heartbeat declares it dead
and queues a sweep, which re-publishes what it held (core/liveness.py, core/outbox.py).
"""

import collections
import concurrent.futures
import time

import pytest

from accounts.services import api_token_create
from core.schedules import seed_schedules
from notifications.models import EmailState, Notification
from tasks_app.models import Role
from tasks_app.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory
from tests.support import Receiver, wait_until
from webhooks import signing
from webhooks.models import DeliveryState, WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.faults
COMMENTS = 120
SUBSCRIPTIONS = 20


def test_worker_sigkilled_mid_stream_its_work_is_redone_by_the_other(broker, stack, smtp):
    name, _ = broker
    smtp.inbox.delay = 0.2  # 200 ms per message, so emails are in flight when the worker dies
    receiver = Receiver(delay=0.3)
    owner = UserFactory(username="loss-owner")
    project = ProjectFactory(owner=owner)
    members = [
        MembershipFactory(project=project, user=UserFactory(username=f"loss-m{i}"), role=Role.MEMBER).user
        for i in range(4)
    ]
    tasks = [TaskFactory(project=project, created_by=owner) for _ in range(10)]
    token = api_token_create(user=owner, name="faults")[1]
    WebhookSubscription.objects.bulk_create(
        [
            WebhookSubscription(
                project=project, url=receiver.url(), events=["comment.created"], secret=signing.generate_secret()
            )
            for _ in range(SUBSCRIPTIONS)
        ]
    )
    seed_schedules()  # shipped schedules and timings: nothing shortened
    stack.web()
    stack.worker("worker-a", concurrency=4)
    stack.worker("worker-b", concurrency=4)
    stack.beat()

    def comment(i):
        with stack.client(token) as client:
            body = {"body": f"look @{members[i % len(members)].username} #{i}"}
            return client.post(f"/api/v1/tasks/{tasks[i % len(tasks)].pk}/comments/", json=body).status_code

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(comment, range(COMMENTS)))
        wait_until(lambda: receiver.unique() >= 400, "the workers to be mid-stream", timeout=120, step=0.05)
        stack.kill("worker-a")  # SIGKILL to the process group: claims held, prefetched messages unacked
        killed_at = time.monotonic()
        sending = Notification.objects.filter(email_state=EmailState.SENDING).count()
        leased = WebhookDelivery.objects.filter(state=DeliveryState.PENDING, lease_until__isnull=False).count()
        pending = Notification.objects.filter(email_state=EmailState.PENDING).count()
        undelivered = WebhookDelivery.objects.exclude(state=DeliveryState.DELIVERED).count()

        wait_until(
            lambda: (
                not Notification.objects.exclude(email_state=EmailState.SENT).exists()
                and not WebhookDelivery.objects.exclude(state=DeliveryState.DELIVERED).exists()
            ),
            "every email sent and every webhook delivered",
            timeout=240,
            step=0.25,
        )
        recovery = time.monotonic() - killed_at
        wait_until(
            lambda: len(smtp.inbox.messages) >= COMMENTS, "the SMTP server to have every email", timeout=10, step=0.1
        )
    finally:
        receiver.close()

    errors = [s for s in statuses if s >= 300]
    assert not errors, f"{len(errors)} API errors"
    assert undelivered > 0 and (sending or pending or leased), "the kill did not happen mid-stream"
    assert Notification.objects.count() == COMMENTS
    message_ids = collections.Counter(m["Message-ID"] for m in smtp.inbox.messages)
    assert len(message_ids) == COMMENTS  # nothing lost
    email_duplicates = sum(message_ids.values()) - COMMENTS
    # Only an email the dead worker was handing to the SMTP server when it died may go out twice.
    assert email_duplicates <= sending
    expected = set(WebhookDelivery.objects.values_list("webhook_id", flat=True))
    assert len(expected) == COMMENTS * SUBSCRIPTIONS and set(receiver.hits) == expected
    webhook_duplicates = receiver.total() - len(expected)  # re-sends of a known webhook-id
    print(
        f"\nFAULT worker-sigkill ({name}, 2 workers, shipped timings): {COMMENTS} comments -> {COMMENTS} emails + "
        f"{len(expected)} webhooks; at the kill {sending} emails sending, {pending} pending, {leased} deliveries "
        f"leased, {undelivered} undelivered; API errors 0/{COMMENTS}, lost 0, email duplicates {email_duplicates}, "
        f"webhook duplicates {webhook_duplicates} (same webhook-id); everything done {recovery:.1f}s after the kill"
    )
