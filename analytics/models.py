from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.outbox import OutboxRow


class Scope(models.TextChoices):
    USER = "user"
    PROJECT = "project"


class AnalyticsSnapshot(models.Model):
    """The last computed metrics of one user or one project (see analytics/metrics.py)."""

    scope = models.CharField(max_length=16, choices=Scope.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="analytics_snapshots"
    )
    project = models.ForeignKey(
        "tasks_app.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="analytics_snapshots"
    )
    data = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(scope="user"), name="uniq_user_snapshot"),
            models.UniqueConstraint(fields=["project"], condition=Q(scope="project"), name="uniq_project_snapshot"),
            models.CheckConstraint(
                condition=(
                    Q(scope="user", user__isnull=False, project__isnull=True)
                    | Q(scope="project", project__isnull=False, user__isnull=True)
                ),
                name="snapshot_scope_matches_target",
            ),
        ]

    def __str__(self):
        return f"{self.scope} snapshot {self.user_id or self.project_id} at {self.computed_at:%Y-%m-%d %H:%M}"


class ExportFormat(models.TextChoices):
    CSV = "csv"
    XLSX = "xlsx"


class ExportStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ExportJob(OutboxRow):
    """One requested export. Pending rows are re-published by core.sweep_pending."""

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    # CASCADE: an export of a deleted project must not turn into an export of every visible task.
    project = models.ForeignKey("tasks_app.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    filters = models.JSONField(default=dict, blank=True)
    fields = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    row_count = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True, max_length=300)
    expires_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["expires_at"])]

    def __str__(self):
        return f"export {self.pk} ({self.format}, {self.status})"
