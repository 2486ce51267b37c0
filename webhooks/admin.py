from django.contrib import admin

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "url", "is_active", "consecutive_failures", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    raw_id_fields = ["project", "created_by"]
    # Secrets are not editable (editable=False) and never displayed here.
    readonly_fields = ["previous_secret_expires_at", "consecutive_failures", "disabled_at", "disabled_reason"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["attempt", "started_at", "duration_ms", "status_code", "error_class", "response_body", "success"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "subscription", "event_type", "state", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["state", "event_type"]
    raw_id_fields = ["subscription", "redelivery_of"]
    readonly_fields = ["webhook_id", "body", "claim_token", "lease_until"]
    inlines = [WebhookAttemptInline]


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "delivery", "attempt", "status_code", "error_class", "success", "started_at"]
    raw_id_fields = ["delivery"]
