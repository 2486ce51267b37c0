from django.contrib import admin

from analytics.models import AnalyticsSnapshot, ExportJob


@admin.register(AnalyticsSnapshot)
class AnalyticsSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "scope", "user", "project", "computed_at"]
    list_filter = ["scope"]
    raw_id_fields = ["user", "project"]
    readonly_fields = ["computed_at"]


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "requester",
        "format",
        "project",
        "status",
        "progress",
        "row_count",
        "created_at",
        "expires_at",
    ]
    list_filter = ["status", "format"]
    raw_id_fields = ["requester", "project"]
    readonly_fields = ["created_at", "enqueued_at", "started_at", "finished_at"]
