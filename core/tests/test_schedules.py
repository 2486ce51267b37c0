import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.schedules import SCHEDULES, SPEC_SCHEDULE_NAMES, seed_schedules


def test_spec_schedules_are_seeded_with_queue_description_and_expiry(db):
    seed_schedules()
    rows = {p.name: p for p in PeriodicTask.objects.select_related("interval", "crontab")}
    expected = {
        "Process Recurring Tasks": ("recurring.process_recurring_tasks", "recurring", 5),
        "Send Reminder Notifications": ("reminders.send_reminder_notifications", "reminders", 15),
        "Cleanup Expired Notifications": ("notifications.cleanup_expired_notifications", "notifications", 60),
        "Precompute Analytics Cache": ("analytics.precompute_analytics", "analytics", 30),
        "Retry Failed Webhooks": ("webhooks.retry_failed_webhooks", "webhooks", 10),
    }
    for name, (task, queue, minutes) in expected.items():
        row = rows[name]
        assert (row.task, row.queue, row.interval.every, row.interval.period) == (task, queue, minutes, "minutes")
        assert row.description and row.enabled and row.expire_seconds == minutes * 60
    nightly = rows["Cleanup Old Webhook Deliveries"]
    assert nightly.task == "webhooks.cleanup_old_webhook_deliveries" and nightly.queue == "webhooks"
    assert (nightly.crontab.minute, nightly.crontab.hour, str(nightly.crontab.timezone)) == ("0", "2", "UTC")
    assert set(SPEC_SCHEDULE_NAMES) <= set(rows)


def test_seeding_twice_changes_nothing(db):
    seed_schedules()
    assert seed_schedules() == []
    assert PeriodicTask.objects.count() == len(SCHEDULES)
    for name in SPEC_SCHEDULE_NAMES:
        assert PeriodicTask.objects.filter(name=name).count() == 1


def test_admin_edits_and_disables_survive_reseeding(db):
    call_command("seed_schedules")
    recurring = PeriodicTask.objects.get(name="Process Recurring Tasks")
    recurring.interval = IntervalSchedule.objects.create(every=7, period=IntervalSchedule.MINUTES)
    recurring.save()
    PeriodicTask.objects.filter(name="Cleanup Expired Notifications").update(enabled=False)

    call_command("seed_schedules")

    assert PeriodicTask.objects.get(name="Process Recurring Tasks").interval.every == 7
    assert PeriodicTask.objects.get(name="Cleanup Expired Notifications").enabled is False
    assert PeriodicTask.objects.count() == len(SCHEDULES)


def test_seeding_survives_duplicate_interval_and_crontab_rows_made_in_admin(db):
    """Interval and crontab rows are not unique; get_or_create raised MultipleObjectsReturned on them."""
    from django_celery_beat.models import CrontabSchedule

    for _ in range(2):
        IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
        CrontabSchedule.objects.create(
            minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
    created = seed_schedules()
    assert sorted(created) == sorted(s.name for s in SCHEDULES)
    first_interval = IntervalSchedule.objects.filter(every=5, period="minutes").order_by("pk").first()
    assert PeriodicTask.objects.get(name="Process Recurring Tasks").interval == first_interval
    nightly = PeriodicTask.objects.get(name="Cleanup Old Webhook Deliveries")
    assert nightly.crontab == CrontabSchedule.objects.filter(hour="2").order_by("pk").first()


def test_deleted_schedule_is_recreated(db):
    seed_schedules()
    PeriodicTask.objects.filter(name="Retry Failed Webhooks").delete()
    assert seed_schedules() == ["Retry Failed Webhooks"]


def test_no_beat_schedule_in_code(settings):
    assert settings.CELERY_BEAT_SCHEDULE == {}


@pytest.mark.worker
def test_admin_run_now_publishes_to_the_rows_queue(transactional_db, redis_clean, client):
    from django.contrib.auth import get_user_model

    seed_schedules()
    admin = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(admin)
    row = PeriodicTask.objects.get(name="Precompute Analytics Cache")
    response = client.post(
        "/admin/django_celery_beat/periodictask/", {"action": "run_now", "_selected_action": [row.pk]}, follow=True
    )
    assert response.status_code == 200
    queued = [json.loads(m)["headers"]["task"] for m in redis_clean.lrange("analytics", 0, -1)]
    assert queued == ["analytics.precompute_analytics"]
    assert b"Queued now: Precompute Analytics Cache" in response.content


def test_beat_and_results_admin_pages_work(db, admin_client):
    seed_schedules()
    for url in [
        "/admin/django_celery_beat/periodictask/",
        "/admin/django_celery_beat/intervalschedule/",
        "/admin/django_celery_beat/crontabschedule/",
        "/admin/django_celery_results/taskresult/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    row = PeriodicTask.objects.get(name="Process Recurring Tasks")
    assert admin_client.get(f"/admin/django_celery_beat/periodictask/{row.pk}/change/").status_code == 200
