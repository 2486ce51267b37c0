"""Redis stopped while the API takes 500 writes: 0 API errors, and every side effect arrives afterwards."""

import concurrent.futures
import itertools

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from rest_framework.authtoken.models import Token

from core.schedules import seed_schedules
from notifications.models import EmailState, Notification
from tasks_app.models import Role
from tasks_app.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory
from tests.faults.conftest import wait_until

pytestmark = pytest.mark.faults
WRITES = 500


def _data():
    owner = UserFactory(username="fault-owner")
    project = ProjectFactory(owner=owner)
    members = [MembershipFactory(project=project, user=UserFactory(username=f"fault-m{i}"), role=Role.MEMBER).user
               for i in range(4)]
    tasks = [TaskFactory(project=project, created_by=owner) for _ in range(25)]
    return Token.objects.create(user=owner).key, members, tasks


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


def test_redis_outage_during_500_writes_loses_nothing(stack, private_redis, smtp):
    token, members, tasks = _data()
    seed_schedules()
    sweep = PeriodicTask.objects.get(name="Sweep Pending Side Effects")
    sweep.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    sweep.save()

    stack.web(workers=2, threads=8)
    stack.worker(concurrency=4)
    stack.beat()
    writes = _writes(members, tasks)
    statuses = []

    def send(op):
        method, url, body = op
        with stack.client(token) as client:
            return getattr(client, method)(url, json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses += pool.map(send, itertools.islice(writes, 100))
        private_redis.stop()
        statuses += pool.map(send, itertools.islice(writes, 300))
        private_redis.start()
        statuses += pool.map(send, itertools.islice(writes, 100))

    errors = [s for s in statuses if s >= 300]
    assert len(statuses) == WRITES and not errors, f"{len(errors)} API errors: {sorted(set(errors))}"

    expected = Notification.objects.exclude(email_state=EmailState.SKIPPED).count()
    assert expected == WRITES  # one notification per write, all with email on

    wait_until(lambda: Notification.objects.filter(email_state=EmailState.SENT).count() == expected, 180,
               1.0, "every notification email to be sent")
    ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert len(ids) == expected and len(set(ids)) == expected, "lost or duplicate emails"
    print(f"\nFAULT redis-outage: writes {WRITES}, API errors 0/{WRITES}, emails {len(set(ids))}/{expected}, "
          f"duplicates {len(ids) - len(set(ids))}")
