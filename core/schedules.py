"""The periodic schedules we ship. They are data: created when missing, never overwritten.

An admin may change an interval, disable a row or point it at another queue in Django admin; the
seed never touches an existing row (looked up by name). A row an admin deleted is created again at
the next seeding, so to stop a schedule, disable it.
"""

import dataclasses
import json

from django.db import transaction


@dataclasses.dataclass(frozen=True)
class ScheduleSeed:
    name: str
    task: str
    queue: str
    description: str
    every_minutes: int | None = None
    crontab: dict | None = None
    expire_seconds: int | None = None

    def expiry(self):
        # A run that could not start before the next one is due is dropped, so a stalled
        # worker does not come back to a flood of identical periodic messages.
        if self.expire_seconds:
            return self.expire_seconds
        return self.every_minutes * 60 if self.every_minutes else 3600


SCHEDULES = [
    ScheduleSeed(
        name="Process Recurring Tasks",
        task="recurring.process_recurring_tasks",
        queue="recurring",
        every_minutes=5,
        description="Creates new instances of recurring tasks whose next occurrence is due.",
    ),
    ScheduleSeed(
        name="Send Reminder Notifications",
        task="reminders.send_reminder_notifications",
        queue="reminders",
        every_minutes=15,
        description="Sends task reminders whose time has come, including any missed while down.",
    ),
    ScheduleSeed(
        name="Cleanup Expired Notifications",
        task="notifications.cleanup_expired_notifications",
        queue="notifications",
        every_minutes=60,
        description="Removes old read notifications, and any past the hard age limit.",
    ),
    ScheduleSeed(
        name="Precompute Analytics Cache",
        task="analytics.precompute_analytics",
        queue="analytics",
        every_minutes=30,
        description="Refreshes the analytics snapshots of active users and projects.",
    ),
    ScheduleSeed(
        name="Retry Failed Webhooks",
        task="webhooks.retry_failed_webhooks",
        queue="webhooks",
        every_minutes=10,
        description="Queues every webhook delivery whose next attempt is due.",
    ),
    ScheduleSeed(
        name="Cleanup Old Webhook Deliveries",
        task="webhooks.cleanup_old_webhook_deliveries",
        queue="webhooks",
        crontab={"minute": "0", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
        description="Daily at 02:00 UTC: removes delivered and failed webhook records past retention.",
    ),
    ScheduleSeed(
        name="Sweep Pending Side Effects",
        task="core.sweep_pending",
        queue="default",
        every_minutes=1,
        description="Re-publishes notifications, deliveries and jobs whose message never arrived.",
    ),
    ScheduleSeed(
        name="Send Daily Task Summaries",
        task="reminders.send_daily_task_summary",
        queue="reminders",
        every_minutes=60,
        expire_seconds=3600,
        description="Hourly: the daily summary of each user whose local morning hour has come (once per local day).",
    ),
    ScheduleSeed(
        name="Send Weekly Productivity Reports",
        task="reminders.send_weekly_productivity_report",
        queue="reminders",
        every_minutes=60,
        expire_seconds=3600,
        description="Hourly: the weekly report of each user at their local Monday morning (once per ISO week).",
    ),
    ScheduleSeed(
        name="Cleanup Idempotency Keys",
        task="core.cleanup_idempotency_keys",
        queue="default",
        every_minutes=60,
        description="Deletes Idempotency-Key records past their 24-hour replay window.",
    ),
    ScheduleSeed(
        name="Cleanup Old Events",
        task="tasks.cleanup_old_events",
        queue="default",
        crontab={"minute": "30", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
        description="Daily at 02:30 UTC: removes activity-log events older than EVENT_RETENTION_DAYS.",
    ),
]

# The six schedules the user's spec (celery-integration.md) names, listed by name, not by list position.
SPEC_SCHEDULE_NAMES = [
    "Process Recurring Tasks",
    "Send Reminder Notifications",
    "Cleanup Expired Notifications",
    "Precompute Analytics Cache",
    "Retry Failed Webhooks",
    "Cleanup Old Webhook Deliveries",
]


def _first_or_create(model, **fields):
    """Interval and crontab rows are not unique (an admin can make duplicates): reuse the oldest match."""
    return model.objects.filter(**fields).order_by("pk").first() or model.objects.create(**fields)


@transaction.atomic
def seed_schedules(*, seeds=None):
    """Create each missing schedule. Returns the names created. Existing rows are left untouched."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created = []
    for seed in seeds or SCHEDULES:
        if PeriodicTask.objects.filter(name=seed.name).exists():
            continue
        fields = {}
        if seed.every_minutes:
            fields["interval"] = _first_or_create(
                IntervalSchedule, every=seed.every_minutes, period=IntervalSchedule.MINUTES
            )
        else:
            fields["crontab"] = _first_or_create(CrontabSchedule, timezone="UTC", **seed.crontab)
        PeriodicTask.objects.create(
            name=seed.name,
            task=seed.task,
            queue=seed.queue,
            exchange=seed.queue,
            routing_key=seed.queue,
            description=seed.description,
            expire_seconds=seed.expiry(),
            args=json.dumps([]),
            kwargs=json.dumps({}),
            enabled=True,
            **fields,
        )
        created.append(seed.name)
    return created
