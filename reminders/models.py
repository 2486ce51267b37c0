"""Reminders on tasks, and the record of daily summaries and weekly reports sent.

Both tables were created by tasks_app (migration 0003) and keep their names: the models moved here
with SeparateDatabaseAndState (tasks_app 0005 forgets them, reminders 0001 adopts them), no data moved.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from tasks_app.models import Task


class ReminderOutcome(models.TextChoices):
    PENDING = "", "pending"
    SENT = "sent"
    SKIPPED_CLOSED = "skipped_closed", "skipped: task done or cancelled"
    SKIPPED_NOT_MEMBER = "skipped_not_member", "skipped: recipient no longer a member"


class Reminder(models.Model):
    """A reminder on a task: absolute (`remind_at`) or relative to the due date (`offset`, negative = before).

    `fire_at` (UTC) is when it is due; null for a relative reminder while the task has no due date.
    `claimed_at` is set by the sweep that queued it: a claimed, unsent reminder is an outbox row
    (core/outbox.py, `published="claimed_at"`), re-published by core.sweep_pending, which stamps
    `enqueued_at` (cleared by each new claim). A claim older than REMINDER_CLAIM_STALE_SECONDS is also
    taken again (the last resort). `sent_at` is set exactly once, by a conditional UPDATE, when the
    reminder was handled (`outcome` says whether a notification was written or why not).
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="reminders")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    # The recipient was the default (the assignee): it follows reassignment until sent.
    follows_assignee = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    remind_at = models.DateTimeField(null=True, blank=True)
    offset = models.DurationField(null=True, blank=True, help_text="Relative to the due date; negative is before.")
    note = models.CharField(max_length=200, blank=True, default="")
    fire_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the outbox sweep last re-published this claim's message."
    )
    claim_token = models.CharField(max_length=32, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=24, choices=ReminderOutcome.choices, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "tasks_app_reminder"
        ordering = ["fire_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(remind_at__isnull=False, offset__isnull=True)
                    | models.Q(remind_at__isnull=True, offset__isnull=False)
                ),
                name="reminder_absolute_xor_relative",
            ),
        ]
        indexes = [
            models.Index(fields=["fire_at"], condition=models.Q(sent_at__isnull=True), name="reminder_due"),
        ]

    def __str__(self):
        return f"reminder {self.pk} on task {self.task_id}"

    @property
    def is_relative(self):
        return self.offset is not None


class SummaryKind(models.TextChoices):
    DAILY = "daily_summary"
    WEEKLY = "weekly_report"


class SummaryDelivery(models.Model):
    """One row per user and period (local date, or ISO week) that was handled: at most one summary each.

    Written in the same transaction as the notification; `outcome` "empty" records a day with nothing
    to say, so the user is not looked at again that day.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="summary_deliveries")
    kind = models.CharField(max_length=16, choices=SummaryKind.choices)
    period_key = models.CharField(max_length=16, help_text="Local date (YYYY-MM-DD) or ISO week (YYYY-Www).")
    outcome = models.CharField(max_length=8, default="sent")
    notification_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tasks_app_summarydelivery"
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "period_key"], name="uniq_summary_per_period"),
        ]

    def __str__(self):
        return f"{self.kind} {self.period_key} for user {self.user_id}"
