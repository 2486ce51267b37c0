"""The reminder sweep (claim), the send (exactly once), skips, late sends, and two sweeps at once."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from tasks_app import conf, services
from tasks_app.models import Membership, Reminder, ReminderOutcome, Status
from tasks_app.tasks import reminders as reminder_tasks
from tasks_app.tests.factories import TaskFactory


def published(callbacks):
    calls = [(cb.args[0], list(cb.keywords["args"])) for cb in callbacks if getattr(cb, "args", None)]
    return [c for c in calls if c[0].startswith("reminders.")]


def make_due(cast, n=1, *, ago=timedelta(minutes=1), **task_fields):
    """n reminders whose time has come (created in the future, then the clock 'passed' them)."""
    task = TaskFactory(project=cast.project, assignee=cast.member, due_at=timezone.now() + timedelta(days=1),
                       **task_fields)
    made = [services.reminder_create(task=task, actor=cast.member, offset=timedelta(minutes=-5 - i))
            for i in range(n)]
    Reminder.objects.filter(pk__in=[r.pk for r in made]).update(fire_at=timezone.now() - ago)
    return task, made


def reminder_notifications(user=None):
    qs = Notification.objects.filter(kind="reminder")
    return qs.filter(recipient=user) if user else qs


def test_sweep_claims_due_reminders_and_queues_one_send_each_on_commit(cast, django_capture_on_commit_callbacks):
    _, due = make_due(cast, 3)
    task = TaskFactory(project=cast.project, due_at=timezone.now() + timedelta(days=1))
    services.reminder_create(task=task, actor=cast.member, offset=timedelta(hours=-1))  # not yet due
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
    assert services.reminders_claim_due() == {"claimed": 5, "batches": 3}


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
    services.task_update(task=done, actor=cast.member, data={"status": Status.DONE})
    services.task_update(task=cancelled, actor=cast.member, data={"status": Status.CANCELLED})
    assert services.reminders_claim_due()["claimed"] == 2
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
    services.reminders_claim_due()
    services.task_update(task=task, actor=cast.member, data={"due_at": timezone.now() + timedelta(days=3)})
    assert reminder_tasks.send_task_reminder(reminder.pk)["outcome"] == "nothing_to_do"
    reminder.refresh_from_db()
    assert reminder.sent_at is None and reminder.fire_at > timezone.now()


def test_reminder_due_during_an_outage_is_sent_late(cast):
    _, [reminder] = make_due(cast, ago=timedelta(days=2))  # no sweep ran for two days
    assert services.reminders_claim_due()["claimed"] == 1
    assert reminder_tasks.send_task_reminder(reminder.pk)["outcome"] == "sent"
    assert reminder_notifications(cast.member).count() == 1


def test_claim_whose_message_was_lost_is_claimed_again_once_stale(cast, broker_down):
    _, [reminder] = make_due(cast)
    assert services.reminders_claim_due()["claimed"] == 1  # the publish failed: broker down
    reminder.refresh_from_db()
    assert reminder.claimed_at is not None and reminder.sent_at is None
    broker_down()  # broker back
    assert services.reminders_claim_due()["claimed"] == 0  # claim still fresh
    later = timezone.now() + timedelta(seconds=conf.get("REMINDER_CLAIM_STALE_SECONDS") + 1)
    assert services.reminders_claim_due(now=later)["claimed"] == 1
    assert reminder_tasks.send_task_reminder(reminder.pk)["outcome"] == "sent"


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
            claimed[name] = services.reminders_claim_due()["claimed"]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert claimed["a"] + claimed["b"] == 60
    assert Reminder.objects.filter(claimed_at__isnull=False).count() == 60
