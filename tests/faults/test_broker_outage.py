"""The broker (Redis or RabbitMQ) stopped during 500 API writes: 0 API errors, every side effect arrives later.

Shipped timings throughout (no OUTBOX_SWEEP_AFTER_SECONDS / PUBLISH_BREAKER_SECONDS / schedule
overrides): recovery comes from the sweep queued when the broker is back (core/outbox.py).
"""

import concurrent.futures
import itertools
import time

import pytest
from django.utils import timezone

from accounts.services import api_token_create
from core.schedules import seed_schedules
from notifications.models import EmailState, Notification
from tasks_app.models import Role
from tasks_app.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory
from tests.support import wait_until

pytestmark = pytest.mark.faults
WRITES = 500


def _data():
    owner = UserFactory(username="fault-owner")
    project = ProjectFactory(owner=owner)
    members = [
        MembershipFactory(project=project, user=UserFactory(username=f"fault-m{i}"), role=Role.MEMBER).user
        for i in range(4)
    ]
    tasks = [TaskFactory(project=project, created_by=owner) for _ in range(25)]
    return api_token_create(user=owner, name="faults")[1], members, tasks


def _writes(members, tasks):
    """An endless mix of assignments and @mention comments, each making one notification."""
    for i in itertools.count():
        task = tasks[i % len(tasks)]
        member = members[i % len(members)]
        if i % 2 == 0:
            # Assign round-robin so every write really changes the assignee.
            yield "patch", f"/api/v1/tasks/{task.pk}/", {"assignee": members[(i // 2) % len(members)].pk}
        else:
            yield "post", f"/api/v1/tasks/{task.pk}/comments/", {"body": f"ping @{member.username} #{i}"}


def test_broker_outage_during_500_writes_loses_nothing(broker, stack, smtp):
    name, server = broker
    token, members, tasks = _data()
    seed_schedules()  # the shipped schedules (the sweep every minute)

    stack.web(workers=2, threads=8)
    # The shipped pool of a worker of mixed queues (manage.py celery_worker: prefork).
    stack.worker(concurrency=4, pool="prefork")
    stack.beat()
    writes = _writes(members, tasks)
    statuses = []

    def send(op):
        method, url, body = op
        with stack.client(token) as client:
            return getattr(client, method)(url, json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses += pool.map(send, itertools.islice(writes, 100))
        server.stop()
        down_from = timezone.now()
        statuses += pool.map(send, itertools.islice(writes, 300))
        server.start()
        back_at, back_from = time.monotonic(), timezone.now()
        # Rows written during the outage were left pending (breaker); the sweep queued on the broker's
        # return re-publishes them (stamping enqueued_at) or they are already sent.
        left = Notification.objects.filter(created_at__gte=down_from, created_at__lt=back_from)
        try:
            wait_until(
                lambda: not left.filter(email_state=EmailState.PENDING, enqueued_at__isnull=True).exists(),
                "the rows left pending during the outage to be re-published",
                timeout=120,
                step=0.1,
            )
        except AssertionError as exc:  # say why: the worker's log holds the reconnect and the sweep
            raise AssertionError(f"{exc}\n--- worker log (tail) ---\n{stack.log('worker')[-8000:]}") from None
        requeued = time.monotonic() - back_at
        statuses += pool.map(send, itertools.islice(writes, 100))

    errors = [s for s in statuses if s >= 300]
    assert len(statuses) == WRITES and not errors, f"{len(errors)} API errors: {sorted(set(errors))}"

    expected = Notification.objects.exclude(email_state=EmailState.SKIPPED).count()
    assert expected == WRITES  # one notification per write, all with email on

    wait_until(
        lambda: Notification.objects.filter(email_state=EmailState.SENT).count() == expected,
        "every notification email to be sent",
        timeout=180,
        step=0.25,
    )
    recovery = time.monotonic() - back_at
    ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert len(ids) == expected and len(set(ids)) == expected, "lost or duplicate emails"
    print(
        f"\nFAULT broker-outage ({name}): writes {WRITES}, API errors 0/{WRITES}, emails {len(set(ids))}/{expected}, "
        f"duplicates {len(ids) - len(set(ids))}, "
        f"outage rows re-published {requeued:.1f}s and all sent {recovery:.1f}s after the broker returned "
        f"(shipped timings; the last figure is bound by the worker's throughput)"
    )
