from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import InputSerializer
from tasks_app.selectors import project_list
from webhooks.models import DeliveryState, Event, WebhookAttempt, WebhookDelivery, WebhookSubscription


class SubscriptionListQuerySerializer(serializers.Serializer):
    # Bounded: an id past the 64-bit range would crash the database driver instead of matching nothing.
    project = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "project",
            "url",
            "events",
            "is_active",
            "description",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]


class SubscriptionWithSecretSerializer(SubscriptionOutputSerializer):
    secret = serializers.SerializerMethodField(help_text="whsec_<base64>: shown only on create and rotation.")

    class Meta(SubscriptionOutputSerializer.Meta):
        fields = [*SubscriptionOutputSerializer.Meta.fields, "secret"]

    def get_secret(self, obj) -> str:
        return self.context["secret"]


@extend_schema_field(OpenApiTypes.INT)
class _ProjectField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return project_list(user=self.context["request"].user)


class SubscriptionInputSerializer(InputSerializer):
    project = _ProjectField()
    url = serializers.CharField(
        max_length=2000,
        validators=[
            RegexValidator(
                r"^[hH][tT][tT][pP][sS]?://[^/?#@\s\x00]+[^\x00]*$", "An http(s) URL with a host.", code="scheme"
            )
        ],
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=Event.choices), allow_empty=False, max_length=len(Event.values)
    )
    description = serializers.CharField(max_length=500, allow_blank=True, required=False, trim_whitespace=False)
    is_active = serializers.BooleanField(required=False)


class SubscriptionUpdateSerializer(SubscriptionInputSerializer):
    project = None


class RotateSecretInputSerializer(InputSerializer):
    grace_period_hours = serializers.FloatField(
        min_value=0, max_value=168, required=False, help_text="How long the old secret keeps signing (default 24)."
    )


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["attempt", "started_at", "duration_ms", "status_code", "error_class", "response_body", "success"]


class DeliveryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "event_type",
            "webhook_id",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "finished_at",
            "redelivery_of",
            "created_at",
        ]


class DeliveryDetailSerializer(DeliveryOutputSerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)
    payload = serializers.JSONField(source="payload_json", read_only=True)

    class Meta(DeliveryOutputSerializer.Meta):
        fields = [*DeliveryOutputSerializer.Meta.fields, "payload", "attempt_log"]


class DeliveryFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)
    event_type = serializers.CharField(max_length=40, required=False)
