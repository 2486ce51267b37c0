from django.contrib import admin

from reminders.models import Reminder, SummaryDelivery


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    """Inspect and delete. Timing and recipient change through the API, which validates them and keeps
    fire_at right; sent_at and the claim belong to the sweep."""

    list_display = ["id", "task", "recipient", "fire_at", "offset", "remind_at", "sent_at", "outcome"]
    list_filter = ["outcome"]
    raw_id_fields = ["task", "recipient", "created_by"]
    list_select_related = ["task", "recipient"]
    readonly_fields = [
        "task",
        "recipient",
        "follows_assignee",
        "created_by",
        "remind_at",
        "offset",
        "fire_at",
        "claimed_at",
        "claim_token",
        "sent_at",
        "outcome",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(SummaryDelivery)
class SummaryDeliveryAdmin(admin.ModelAdmin):
    """One row per user and period handled. Deleting a row lets that period's summary be sent again."""

    list_display = ["id", "user", "kind", "period_key", "outcome", "notification_id", "created_at"]
    list_filter = ["kind", "outcome"]
    search_fields = ["period_key"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "kind", "period_key", "outcome", "notification_id", "created_at"]

    def has_add_permission(self, request):
        return False
