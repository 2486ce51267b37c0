import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.outbox import OutboxRow


class Event(models.TextChoices):
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_DELETED = "task.deleted"
    TASK_ASSIGNED = "task.assigned"
    TASK_COMPLETED = "task.completed"
    COMMENT_CREATED = "comment.created"
    COMMENT_UPDATED = "comment.updated"
    COMMENT_DELETED = "comment.deleted"
    RECURRING_INSTANCE_CREATED = "recurring.instance_created"
    LABEL_CREATED = "label.created"
    LABEL_UPDATED = "label.updated"
    LABEL_DELETED = "label.deleted"
    TASK_LABELS_CHANGED = "task.labels_changed"
    RELATION_ADDED = "relation.added"
    RELATION_REMOVED = "relation.removed"
    SUBTASK_ADDED = "subtask.added"
    SUBTASK_REMOVED = "subtask.removed"
    MEMBER_ADDED = "member.added"
    MEMBER_UPDATED = "member.updated"
    MEMBER_REMOVED = "member.removed"
    PROJECT_UPDATED = "project.updated"


PING_EVENT = "webhook.ping"


class WebhookSubscription(models.Model):
    project = models.ForeignKey("tasks_app.Project", on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list, help_text="Event types this subscription receives.")
    is_active = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True, default="")
    # Base64 of 32 random bytes (shown to the user once as whsec_<base64>). Never logged, never in task args.
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(
        default=0, help_text="Deliveries in a row that exhausted every retry."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "is_active"])]

    def __str__(self):
        return f"webhook {self.pk} of project {self.project_id}"

    def signing_secrets(self, *, now=None):
        now = now or timezone.now()
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt of the schedule failed
    CANCELLED = "cancelled"


def new_webhook_id():
    return f"msg_{uuid.uuid4().hex}"


class WebhookDelivery(OutboxRow):
    """One event for one subscription: the durable record, written in the triggering transaction."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    # Standard Webhooks `webhook-id`: stable across retries and kept by redeliver.
    webhook_id = models.CharField(max_length=64, default=new_webhook_id, db_index=True)
    body = models.TextField(help_text="The exact JSON body sent on every attempt.")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Claim: a worker owns the row until lease_until; claim_token tells it which rows it got.
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="", db_index=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["subscription", "state"]),
            models.Index(fields=["state", "finished_at"]),
        ]

    def __str__(self):
        return f"{self.event_type} -> webhook {self.subscription_id} ({self.state})"

    @property
    def payload_json(self):
        import json

        return json.loads(self.body)


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempt = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=100, blank=True, default="")
    # Truncated (WEBHOOK_RESPONSE_BODY_LIMIT); shown only to the subscription's managers.
    response_body = models.TextField(blank=True, default="")
    success = models.BooleanField(default=False)

    class Meta:
        ordering = ["attempt", "id"]

    def __str__(self):
        return f"attempt {self.attempt} of delivery {self.delivery_id}"
