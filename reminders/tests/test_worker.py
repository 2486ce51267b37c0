"""End to end: API -> reminder rows -> the sweep on a real worker over Redis -> notification -> real SMTP server."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from notifications.models import Notification
from notifications.services import NotificationService
from reminders.models import Reminder, ReminderOutcome
from tasks_app.tests.factories import TaskFactory
from tests.support import wait_until

pytestmark = pytest.mark.worker


def sweep_results():
    return list(TaskResult.objects.filter(task_name="reminders.send_reminder_notifications", status="SUCCESS"))


def test_reminders_fire_once_follow_the_due_date_survive_an_outage_and_skip_closed_tasks(
    cast, api, start_celery_worker, smtp_server
):
    smtp_server.start()
    client = api(cast.member)
    now = timezone.now()

    def task(title, due_at):
        return TaskFactory(project=cast.project, title=title, assignee=cast.member, due_at=due_at)

    def remind(t, **body):
        r = client.post(f"/api/v1/tasks/{t.pk}/reminders/", body, format="json")
        assert r.status_code == 201, r.content
        return r.json()["id"]

    absolute = remind(task("Absolute", now + timedelta(days=1)), remind_at=(now + timedelta(seconds=2)).isoformat())
    relative = remind(task("Relative", now + timedelta(minutes=60, seconds=2)), offset_minutes=-60)
    moved_task = task("Moved", now + timedelta(hours=3))
    moved = remind(moved_task, offset_minutes=-60)
    r = client.patch(
        f"/api/v1/tasks/{moved_task.pk}/",
        {"due_at": (now + timedelta(minutes=60, seconds=3)).isoformat()},
        format="json",
    )
    assert r.status_code == 200
    assert Reminder.objects.get(pk=moved).fire_at == now + timedelta(seconds=3)
    closed_task = task("Completed", now + timedelta(minutes=60, seconds=2))
    closed = remind(closed_task, offset_minutes=-60)
    assert client.patch(f"/api/v1/tasks/{closed_task.pk}/", {"status": "done"}, format="json").status_code == 200
    late = remind(task("Late", now + timedelta(days=1)), remind_at=(now + timedelta(hours=1)).isoformat())
    Reminder.objects.filter(pk=late).update(fire_at=now - timedelta(hours=3))  # came due while beat was down
    not_yet = remind(task("Tomorrow", now + timedelta(days=1)), offset_minutes=-60)

    wait_until(lambda: timezone.now() > now + timedelta(seconds=3.2), "the reminders' time")
    with start_celery_worker(queues=["reminders", "notifications"]):
        NotificationService.process_pending_reminders()
        wait_until(lambda: len(smtp_server.inbox.messages) >= 4, "four reminder emails")
        wait_until(lambda: Reminder.objects.filter(sent_at__isnull=False).count() == 5, "five handled reminders")
        NotificationService.process_pending_reminders()  # a second sweep finds nothing to send
        wait_until(lambda: len(sweep_results()) == 2, "the second sweep")
        time.sleep(1.0)  # room for a duplicate to show up

    subjects = sorted(m["Subject"] for m in smtp_server.inbox.messages)
    assert len(subjects) == 4
    for title in ("Absolute", "Relative", "Moved", "Late"):
        assert sum(f"\u201c{title}\u201d" in s for s in subjects) == 1, subjects
    assert all(rcpt == ["member@example.test"] for _, rcpt in smtp_server.inbox.envelopes)
    outcomes = dict(Reminder.objects.values_list("id", "outcome"))
    assert outcomes == {
        absolute: "sent",
        relative: "sent",
        moved: "sent",
        late: "sent",
        closed: ReminderOutcome.SKIPPED_CLOSED,
        not_yet: "",
    }
    assert sorted(r.result for r in sweep_results()) == sorted(
        ['{"claimed": 5, "batches": 1}', '{"claimed": 0, "batches": 0}']
    )
    assert Notification.objects.filter(kind="reminder", email_state="sent").count() == 4


def test_two_concurrent_sweeps_do_not_double_send(cast, start_celery_worker, smtp_server, celery_app, settings):
    settings.REMINDER_SWEEP_BATCH = 5  # many small claim transactions, so the two runs interleave
    smtp_server.start()
    n = 30
    task = TaskFactory(project=cast.project, assignee=cast.member, due_at=timezone.now() + timedelta(days=1))
    Reminder.objects.bulk_create(
        [
            Reminder(
                task=task,
                recipient=cast.member,
                remind_at=timezone.now() + timedelta(hours=1),
                fire_at=timezone.now() - timedelta(minutes=i),
            )
            for i in range(n)
        ]
    )
    with start_celery_worker(queues=["reminders", "notifications"], concurrency=4):
        for _ in range(2):
            celery_app.send_task("reminders.send_reminder_notifications")
        wait_until(lambda: len(sweep_results()) == 2, "both sweeps")
        wait_until(lambda: len(smtp_server.inbox.messages) >= n, f"{n} emails", timeout=40)
        wait_until(lambda: not Reminder.objects.filter(sent_at__isnull=True).exists(), "every reminder handled")
        time.sleep(1.0)
    claimed = [int(r.result.split('"claimed": ')[1].split(",")[0]) for r in sweep_results()]
    assert sum(claimed) == n
    assert len(smtp_server.inbox.messages) == n
    assert len({m["Message-ID"] for m in smtp_server.inbox.messages}) == n
    assert Notification.objects.filter(kind="reminder").count() == n


def test_claim_whose_message_never_reached_the_broker_is_sent_after_the_sweep(
    cast, start_celery_worker, smtp_server, celery_app, redis_clean, settings
):
    """The claim commits but its publish is skipped (the breaker is open, as in a broker outage): the sweep
    queued when the broker comes back re-publishes it, through a real worker, and it is sent once."""
    from core.enqueue import breaker
    from reminders.services import reminders_claim_due

    smtp_server.start()
    task = TaskFactory(project=cast.project, assignee=cast.member, due_at=timezone.now() + timedelta(days=1))
    reminder = Reminder.objects.create(
        task=task, recipient=cast.member, remind_at=timezone.now() + timedelta(hours=1), fire_at=timezone.now()
    )
    settings.PUBLISH_BREAKER_SECONDS = 3600
    breaker.trip()
    try:
        assert reminders_claim_due()["claimed"] == 1  # committed; the publish on commit is skipped
    finally:
        breaker.reset()  # the broker is back
    assert redis_clean.llen("reminders") == 0
    reminder.refresh_from_db()
    assert reminder.claimed_at is not None and reminder.sent_at is None
    with start_celery_worker(queues=["default", "reminders", "notifications"]):
        report = celery_app.send_task("core.sweep_pending", kwargs={"before": time.time()}).get(timeout=20)
        assert report["reminders.send"] == 1
        wait_until(lambda: len(smtp_server.inbox.messages) >= 1, "the reminder email")
        # Another such sweep (a second worker reconnecting) finds nothing left to re-publish.
        report = celery_app.send_task("core.sweep_pending", kwargs={"before": time.time()}).get(timeout=20)
        assert report["reminders.send"] == 0
        time.sleep(1.0)  # room for a duplicate to show up
    reminder.refresh_from_db()
    assert reminder.sent_at is not None and reminder.outcome == ReminderOutcome.SENT
    assert Notification.objects.filter(kind="reminder").count() == 1
    assert len(smtp_server.inbox.messages) == 1
