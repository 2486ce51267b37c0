from django.conf import settings
from django.db import models
from django.db.models import Q

from core.outbox import OutboxRow


class Kind(models.TextChoices):
    ASSIGNED = "assigned"
    MENTIONED = "mentioned"
    REMINDER = "reminder"
    DAILY_SUMMARY = "daily_summary"
    WEEKLY_REPORT = "weekly_report"
    WEBHOOK_DISABLED = "webhook_disabled"


class EmailState(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker; guards against a redelivered task sending twice
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


# Channels a user gets when they never chose. Digests are email-first, so they stay out of the in-app list.
DEFAULT_CHANNELS = {
    Kind.ASSIGNED: {"in_app": True, "email": True},
    Kind.MENTIONED: {"in_app": True, "email": True},
    Kind.REMINDER: {"in_app": True, "email": True},
    Kind.DAILY_SUMMARY: {"in_app": False, "email": True},
    Kind.WEEKLY_REPORT: {"in_app": False, "email": True},
    Kind.WEBHOOK_DISABLED: {"in_app": True, "email": True},
}


class Notification(OutboxRow):
    """One event for one recipient: the in-app entry and the durable record of its email."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    task = models.ForeignKey("tasks_app.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    comment = models.ForeignKey("tasks_app.Comment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    # False when the user turned the in-app channel off but wants the email: the row is then only the email record.
    show_in_app = models.BooleanField(default=True)
    read_at = models.DateTimeField(null=True, blank=True)

    email_state = models.CharField(max_length=16, choices=EmailState.choices, default=EmailState.SKIPPED)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_last_error = models.CharField(max_length=300, blank=True, default="")
    email_claimed_at = models.DateTimeField(null=True, blank=True)
    # The Celery task id that holds the claim; its own retries (same id) may take the row back.
    email_claim_token = models.CharField(max_length=64, blank=True, default="")
    email_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "show_in_app", "-created_at"], name="notif_inbox"),
            models.Index(fields=["email_state", "created_at"], name="notif_email_state"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "comment"], condition=Q(kind="mentioned"), name="notif_one_mention_per_comment"
            ),
        ]

    def __str__(self):
        return f"{self.kind} for user {self.recipient_id} ({self.pk})"

    @property
    def is_read(self):
        return self.read_at is not None


class NotificationPreference(models.Model):
    """A user's channels for one kind. No row means DEFAULT_CHANNELS."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    in_app = models.BooleanField()
    email = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="uniq_notification_pref")]

    def __str__(self):
        return f"{self.kind} prefs of user {self.user_id}"
