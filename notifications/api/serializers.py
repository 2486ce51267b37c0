from rest_framework import serializers

from core.serializers import StrictFieldsMixin
from notifications.models import Kind, Notification


class ActorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class TaskBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class NotificationOutputSerializer(serializers.ModelSerializer):
    actor = ActorSerializer(read_only=True, allow_null=True)
    task = TaskBriefSerializer(read_only=True, allow_null=True)
    is_read = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "text", "actor", "task", "comment", "data", "is_read", "read_at", "created_at"]


class NotificationListQuerySerializer(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: only unread; false: only read."
    )


class UnreadCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class ReadAllSerializer(serializers.Serializer):
    updated = serializers.IntegerField()


class ChannelsSerializer(StrictFieldsMixin, serializers.Serializer):
    in_app = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["Unknown channel; use in_app or email."] for k in unknown})
        return super().to_internal_value(data)


class PreferencesSerializer(serializers.Serializer):
    """Per kind, {"in_app": bool, "email": bool}. PATCH may send any subset of kinds and channels."""

    def get_fields(self):
        return {kind.value: ChannelsSerializer(required=False) for kind in Kind}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(Kind.values))
            if unknown:
                raise serializers.ValidationError({k: ["Unknown notification kind."] for k in unknown})
        return super().to_internal_value(data)
