"""Webhook admin: subscriptions are written through webhooks.services (URL validation with the SSRF check,
events normalized, secret generated); deliveries and attempts are read-only records with a redeliver
action that goes through the same service as the API."""

from django import forms
from django.contrib import admin, messages

from core.exceptions import ApplicationError
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

SUBSCRIPTION_FIELDS = ("url", "events", "description", "is_active")


class WebhookSubscriptionForm(forms.ModelForm):
    class Meta:
        model = WebhookSubscription
        fields = ["project", "url", "events", "description", "is_active"]

    def clean(self):
        data = super().clean()
        try:
            events = services.subscription_validate(url=data.get("url"), events=data.get("events") or [])
        except ApplicationError as exc:
            errors = {f: m for f, m in exc.fields.items() if f in self.fields}
            raise forms.ValidationError(errors or exc.message) from None
        data["events"] = events
        return data


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["id", "project", "url", "is_active", "consecutive_failures", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    raw_id_fields = ["project"]
    # Secrets are not editable (editable=False) and never displayed here.
    readonly_fields = ["previous_secret_expires_at", "consecutive_failures", "disabled_at", "disabled_reason"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "project", "created_by"] if obj is not None else fields  # created by: the staff user

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in SUBSCRIPTION_FIELDS if f in form.cleaned_data}
        if change:
            changed = {f: v for f, v in data.items() if f in form.changed_data}
            saved = services.subscription_update(
                subscription=obj, actor=request.user, data=changed, check_permission=False
            )
        else:
            saved, secret = services.subscription_create(
                actor=request.user,
                project=form.cleaned_data["project"],
                check_permission=False,
                **data,
            )
            self.message_user(
                request, f"Signing secret (shown once, give it to the receiver): {secret}", messages.WARNING
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.subscription_delete(subscription=obj, actor=request.user, check_permission=False)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = [
        "attempt",
        "started_at",
        "duration_ms",
        "status_code",
        "error_class",
        "response_body",
        "success",
    ]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Read-only: a delivery is a record of what was sent. Find one by its `webhook-id` (the header
    receivers log), filter by state, event and date; "Redeliver" sends it again through the service."""

    list_display = [
        "id",
        "webhook_id",
        "subscription",
        "event_type",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["state", "event_type", "created_at"]
    search_fields = ["=webhook_id", "=subscription__id", "subscription__url"]
    list_select_related = ["subscription"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Redeliver (same body and webhook-id)", permissions=["view"])
    def redeliver(self, request, queryset):
        sent, refused = [], []
        for delivery in queryset.select_related("subscription__project"):
            try:
                copy = services.delivery_redeliver(delivery=delivery, actor=request.user, check_permission=False)
                sent.append(str(copy.pk))
            except ApplicationError as exc:
                refused.append(f"{delivery.pk}: {exc.message}")
        if sent:
            self.message_user(request, f"Redelivery queued: {', '.join(sent)}", messages.SUCCESS)
        for message in refused:
            self.message_user(request, f"Not redelivered: {message}", messages.ERROR)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "delivery", "attempt", "status_code", "error_class", "success", "started_at"]
    list_filter = ["success", "error_class"]
    search_fields = ["=delivery__webhook_id"]
    list_select_related = ["delivery"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
