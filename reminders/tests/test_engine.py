"""The reminder sweep (claim), the send (exactly once), skips, late sends, and two sweeps at once."""

import base64
import json
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from reminders import conf
from reminders import tasks as reminder_tasks
from reminders.models import Reminder, ReminderOutcome
from reminders.services import reminder_create, reminders_claim_due
from tasks_app.models import Membership, Status
from tasks_app.services.tasks import task_update
from tasks_app.tests.factories import TaskFactory


def published(callbacks):
    calls = [(cb.args[0], list(cb.keywords["args"])) for cb in callbacks if getattr(cb, "args", None)]
    return [c for c in calls if c[0].startswith("reminders.")]


def make_due(cast, n=1, *, ago=timedelta(minutes=1), **task_fields):
    """n reminders whose time has come (created in the future, then the clock 'passed' them)."""
    task = TaskFactory(
        project=cast.project, assignee=cast.member, due_at=timezone.now() + timedelta(days=1), **task_fields
    )
    made = [reminder_create(task=task, actor=cast.member, offset=timedelta(minutes=-5 - i)) for i in range(n)]
    Reminder.objects.filter(pk__in=[r.pk for r in made]).update(fire_at=timezone.now() - ago)
    return task, made


def queued(redis, queue="reminders"):
    """(task name, args) of the messages waiting in a Redis queue, oldest first (LPUSH: the list is newest first)."""
    messages = [json.loads(raw) for raw in reversed(redis.lrange(queue, 0, -1))]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


@pytest.fixture
def publish_skipped(settings):
    """Publishing skipped, as after a failed publish (the breaker is open): the claim's message is never sent."""
    from core.enqueue import breaker

    settings.PUBLISH_BREAKER_SECONDS = 3600
    breaker.trip()
    yield breaker
    breaker.reset()


def reminder_notifications(user=None):
    qs = Notification.objects.filter(kind="reminder")
    return qs.filter(recipient=user) if user else qs


def test_sweep_claims_due_reminders_and_queues_one_send_each_on_commit(cast, django_capture_on_commit_callbacks):
    _, due = make_due(cast, 3)
    task = TaskFactory(project=cast.project, due_at=timezone.now() + timedelta(days=1))
    reminder_create(task=task, actor=cast.member, offset=timedelta(hours=-1))  # not yet due
    with django_capture_on_commit_callbacks() as callbacks:
        report = reminder_tasks.send_reminder_notifications()
    assert report == {"claimed": 3, "batches": 1}
    assert sorted(published(callbacks)) == sorted(("reminders.send_task_reminder", [r.pk]) for r in due)
    assert Reminder.objects.filter(claimed_at__isnull=False).count() == 3
    with django_capture_on_commit_callbacks() as callbacks:
        assert reminder_tasks.send_reminder_notifications()["claimed"] == 0  # fresh claims are left alone
    assert published(callbacks) == []


def test_sweep_works_in_batches(cast, settings):
    settings.REMINDER_SWEEP_BATCH = 2
    make_due(cast, 5)
    assert reminders_claim_due() == {"claimed": 5, "batches": 3}


def test_send_writes_the_notification_and_marks_sent_exactly_once(cast, mailoutbox):
    task, [reminder] = make_due(cast)
    first = reminder_tasks.send_task_reminder(reminder.pk)
    second = reminder_tasks.send_task_reminder(reminder.pk)  # a redelivery
    assert first == {"reminder": reminder.pk, "outcome": "sent"}
    assert second == {"reminder": reminder.pk, "outcome": "nothing_to_do"}
    [notification] = reminder_notifications()
    assert notification.recipient_id == cast.member.pk and notification.task_id == task.pk
    assert task.title in notification.text and notification.data["reminder_id"] == reminder.pk
    reminder.refresh_from_db()
    assert reminder.sent_at is not None and reminder.outcome == ReminderOutcome.SENT


def test_reminders_on_done_or_cancelled_tasks_are_not_sent(cast):
    done, [r1] = make_due(cast)
    cancelled, [r2] = make_due(cast)
    task_update(task=done, actor=cast.member, data={"status": Status.DONE})
    task_update(task=cancelled, actor=cast.member, data={"status": Status.CANCELLED})
    assert reminders_claim_due()["claimed"] == 2
    for r in (r1, r2):
        assert reminder_tasks.send_task_reminder(r.pk)["outcome"] == ReminderOutcome.SKIPPED_CLOSED
    assert not reminder_notifications().exists()


def test_recipient_who_left_the_project_is_not_notified(cast):
    task, [reminder] = make_due(cast)
    Membership.objects.filter(project=cast.project, user=cast.member).delete()
    assert reminder_tasks.send_task_reminder(reminder.pk)["outcome"] == ReminderOutcome.SKIPPED_NOT_MEMBER
    assert not reminder_notifications().exists()


def test_reminder_rearmed_after_its_claim_is_not_sent_early(cast):
    task, [reminder] = make_due(cast)
    reminders_claim_due()
    task_update(task=task, actor=cast.member, data={"due_at": timezone.now() + timedelta(days=3)})
    assert reminder_tasks.send_task_reminder(reminder.pk)["outcome"] == "nothing_to_do"
    reminder.refresh_from_db()
    assert reminder.sent_at is None and reminder.fire_at > timezone.now()


def test_reminder_due_during_an_outage_is_sent_late(cast):
    _, [reminder] = make_due(cast, ago=timedelta(days=2))  # no sweep ran for two days
    assert reminders_claim_due()["claimed"] == 1
    assert reminder_tasks.send_task_reminder(reminder.pk)["outcome"] == "sent"
    assert reminder_notifications(cast.member).count() == 1


def test_claim_whose_message_was_lost_is_claimed_again_once_stale(cast, broker_down):
    _, [reminder] = make_due(cast)
    assert reminders_claim_due()["claimed"] == 1  # the publish failed: broker down
    reminder.refresh_from_db()
    assert reminder.claimed_at is not None and reminder.sent_at is None
    broker_down()  # broker back
    assert reminders_claim_due()["claimed"] == 0  # claim still fresh
    later = timezone.now() + timedelta(seconds=conf.REMINDER_CLAIM_STALE_SECONDS + 1)
    assert reminders_claim_due(now=later)["claimed"] == 1
    assert reminder_tasks.send_task_reminder(reminder.pk)["outcome"] == "sent"


def test_claim_whose_message_was_never_published_is_republished_by_the_outbox_sweep(
    cast, redis_clean, publish_skipped, django_capture_on_commit_callbacks, settings
):
    from core import outbox

    _, [reminder] = make_due(cast)
    _, [sent] = make_due(cast)
    # Created days before it came due: a claim's first publish is its claim, not the row's creation.
    Reminder.objects.update(created_at=timezone.now() - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_claim_due()["claimed"] == 2  # the publishes on commit are skipped
    assert reminder_tasks.send_task_reminder(sent.pk)["outcome"] == "sent"  # handled: never swept
    publish_skipped.reset()  # the broker is back
    assert queued(redis_clean) == []
    # A plain sweep leaves a claim younger than OUTBOX_SWEEP_AFTER_SECONDS alone (its message may be in flight) ...
    assert outbox.sweep()["reminders.send"] == 0
    assert queued(redis_clean) == []
    # ... the sweep queued when the broker comes back (or a worker dies) re-publishes it at once,
    assert outbox.sweep(before=time.time())["reminders.send"] == 1
    assert queued(redis_clean) == [("reminders.send_task_reminder", [reminder.pk])]
    reminder.refresh_from_db()
    assert reminder.enqueued_at is not None and reminder.sent_at is None
    # ... once: a second such sweep finds it just re-published,
    assert outbox.sweep(before=time.time())["reminders.send"] == 0
    # and a periodic sweep re-publishes it again only OUTBOX_SWEEP_AFTER_SECONDS after that.
    later = timezone.now() + timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS + 1)
    assert outbox.sweep(now=later)["reminders.send"] == 1
    assert len(queued(redis_clean)) == 2
    # A new claim (stale, the last resort) is a new publish: the sweep counts from it again.
    stale = timezone.now() + timedelta(seconds=conf.REMINDER_CLAIM_STALE_SECONDS + 1)
    assert reminders_claim_due(now=stale)["claimed"] == 1
    reminder.refresh_from_db()
    assert reminder.enqueued_at is None and reminder.claimed_at == stale


def test_reminder_republished_twice_is_sent_once(cast, redis_clean, django_capture_on_commit_callbacks):
    from core import outbox

    _, [reminder] = make_due(cast)
    with django_capture_on_commit_callbacks(execute=True):
        reminders_claim_due()  # published on commit
    assert outbox.sweep(before=time.time())["reminders.send"] == 1  # and again (a worker died, say)
    messages = queued(redis_clean)
    assert messages == [("reminders.send_task_reminder", [reminder.pk])] * 2
    outcomes = [reminder_tasks.send_task_reminder(*args)["outcome"] for _, args in messages]
    assert outcomes == ["sent", "nothing_to_do"]
    assert reminder_notifications(cast.member).count() == 1
    assert outbox.sweep(before=time.time())["reminders.send"] == 0  # sent: no longer pending


def test_unclaimed_and_rearmed_reminders_are_not_outbox_rows(cast, redis_clean):
    from core import outbox

    task, [reminder] = make_due(cast)
    assert outbox.sweep(before=time.time())["reminders.send"] == 0  # due, not claimed yet: the claim's job
    reminders_claim_due()
    task_update(task=task, actor=cast.member, data={"due_at": timezone.now() + timedelta(days=3)})  # re-armed
    reminder.refresh_from_db()
    assert reminder.claimed_at is None and reminder.enqueued_at is None
    assert outbox.sweep(before=time.time())["reminders.send"] == 0
    assert queued(redis_clean) == []


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_claim_disjoint_sets(cast, settings):
    settings.REMINDER_SWEEP_BATCH = 7
    _, due = make_due(cast, 60)
    barrier = threading.Barrier(2)
    claimed = {}

    def sweep(name):
        from django.db import connections

        barrier.wait()
        try:
            claimed[name] = reminders_claim_due()["claimed"]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert claimed["a"] + claimed["b"] == 60
    assert Reminder.objects.filter(claimed_at__isnull=False).count() == 60


def test_reminders_follow_the_task_inside_its_transaction(cast):
    """The task_updated receiver moves reminders in task_update's transaction: a rollback undoes both."""
    from django.db import transaction

    from tasks_app import signals

    assert "reminders.task_updated" in [receiver[0][0] for receiver in signals.task_updated.receivers]
    task = TaskFactory(project=cast.project, assignee=cast.member, due_at=timezone.now() + timedelta(days=1))
    reminder = reminder_create(task=task, actor=cast.member, offset=timedelta(hours=-1))
    before = reminder.fire_at
    later = task.due_at + timedelta(hours=5)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        task_update(task=task, actor=cast.member, data={"due_at": later, "assignee": cast.admin})
        reminder.refresh_from_db()
        assert (reminder.fire_at, reminder.recipient_id) == (later - timedelta(hours=1), cast.admin.pk)
        raise Abort
    reminder.refresh_from_db()
    assert (reminder.fire_at, reminder.recipient_id) == (before, cast.member.pk)
