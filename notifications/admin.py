from django.contrib import admin

from notifications.models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "recipient", "show_in_app", "read_at", "email_state", "email_attempts", "created_at"]
    list_filter = ["kind", "email_state", "show_in_app"]
    search_fields = ["recipient__username", "text"]
    raw_id_fields = ["recipient", "actor", "task", "comment"]
    readonly_fields = ["email_attempts", "email_last_error", "email_claimed_at", "email_sent_at", "enqueued_at"]
    date_hierarchy = "created_at"


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "in_app", "email", "updated_at"]
    list_filter = ["kind", "in_app", "email"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
