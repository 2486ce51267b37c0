from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from core.outbox import OutboxRow
from tasks_app.validators import validate_timezone


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    morning_hour = models.PositiveSmallIntegerField(
        default=8, validators=[MaxValueValidator(23)], help_text="Local hour for the daily summary."
    )

    class Meta:
        # The hourly summary runs look users up by (timezone, local morning hour).
        indexes = [models.Index(fields=["timezone", "morning_hour"], name="profile_local_morning")]

    def __str__(self):
        return f"profile of {self.user}"


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="uniq_membership")]

    def __str__(self):
        return f"{self.user} in {self.project} ({self.role})"


class Status(models.TextChoices):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


CLOSED_STATUSES = (Status.DONE, Status.CANCELLED)


class Priority(models.IntegerChoices):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    URGENT = 4


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TODO)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tasks"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_tasks"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change, so webhook receivers can drop out-of-order events.
    version = models.PositiveIntegerField(default=1)
    # Recurring instances: the template (kept null when the template is deleted, so history stays),
    # the occurrence (UTC) this instance stands for, and the fields a user changed on it, which
    # template updates then leave alone.
    recurring_template = models.ForeignKey(
        "RecurringTaskTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="instances"
    )
    occurrence_at = models.DateTimeField(null=True, blank=True)
    edited_fields = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recurring_template", "occurrence_at"], name="uniq_recurring_occurrence"),
        ]
        indexes = [
            models.Index(fields=["project", "status"]),
            models.Index(fields=["assignee", "status"]),
            models.Index(fields=["due_at"]),
            models.Index(fields=["completed_at"]),
        ]

    def __str__(self):
        return self.title


class Comment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="comments")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"comment {self.pk} on task {self.task_id}"


class RecurrenceMode(models.TextChoices):
    SCHEDULE = "schedule"
    AFTER_COMPLETION = "after_completion"


class CatchUp(models.TextChoices):
    ALL = "all"
    LATEST = "latest"


class RecurringTaskTemplate(OutboxRow):
    """A task that repeats on an RFC 5545 RRULE; each occurrence becomes a normal Task (an instance).

    `next_run_at` (= next_occurrence_at - lead_time) is when the next instance is due to be created;
    null when there is none (rule exhausted, after_completion waiting for the open instance, or a
    schedule change still being applied). `apply_pending` marks template changes not yet applied to
    future instances (`reschedule_pending`: the schedule changed too); the outbox sweep re-publishes
    those (created_at/enqueued_at come from OutboxRow).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="recurring_templates")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assigned_recurring_templates")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="created_recurring_templates")
    rrule = models.CharField(max_length=500, help_text="RFC 5545 RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO,WE")
    dtstart = models.DateTimeField(help_text="First occurrence; its wall-clock time in `timezone` is kept.")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    until = models.DateTimeField(null=True, blank=True)
    count = models.PositiveIntegerField(null=True, blank=True)
    mode = models.CharField(max_length=16, choices=RecurrenceMode.choices, default=RecurrenceMode.SCHEDULE)
    lead_time = models.DurationField(default=timedelta(0), help_text="Create each instance this long before it is due.")
    catch_up = models.CharField(max_length=8, choices=CatchUp.choices, default=CatchUp.ALL)
    enabled = models.BooleanField(default=True)

    next_occurrence_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_occurrence_at = models.DateTimeField(null=True, blank=True)
    last_generated_at = models.DateTimeField(null=True, blank=True)
    instances_created = models.PositiveIntegerField(default=0)
    instances_cleaned = models.PositiveIntegerField(
        default=0, help_text="Completed instances removed by the retention cleanup (still part of the history)."
    )
    apply_pending = models.BooleanField(default=False)
    reschedule_pending = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["enabled", "next_run_at"])]

    def __str__(self):
        return self.title


class ReminderOutcome(models.TextChoices):
    PENDING = "", "pending"
    SENT = "sent"
    SKIPPED_CLOSED = "skipped_closed", "skipped: task done or cancelled"
    SKIPPED_NOT_MEMBER = "skipped_not_member", "skipped: recipient no longer a member"


class Reminder(models.Model):
    """A reminder on a task: absolute (`remind_at`) or relative to the due date (`offset`, negative = before).

    `fire_at` (UTC) is when it is due; null for a relative reminder while the task has no due date.
    `claimed_at` is set by the sweep that queued it (a claim older than REMINDER_CLAIM_STALE_SECONDS is
    taken again, so a lost message is re-sent); `sent_at` is set exactly once, by a conditional UPDATE,
    when the reminder was handled (`outcome` says whether a notification was written or why not).
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
    claim_token = models.CharField(max_length=32, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=24, choices=ReminderOutcome.choices, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["fire_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(remind_at__isnull=False, offset__isnull=True)
                           | models.Q(remind_at__isnull=True, offset__isnull=False)),
                name="reminder_absolute_xor_relative",
            ),
        ]
        indexes = [
            models.Index(fields=["fire_at"], condition=models.Q(sent_at__isnull=True), name="reminder_due"),
        ]

    @property
    def is_relative(self):
        return self.offset is not None

    def __str__(self):
        return f"reminder {self.pk} on task {self.task_id}"


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
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "period_key"], name="uniq_summary_per_period"),
        ]

    def __str__(self):
        return f"{self.kind} {self.period_key} for user {self.user_id}"
