from datetime import timedelta

from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.fields import AwareDateTimeField
from core.serializers import InputSerializer
from reminders.models import Reminder
from tasks_app.api.serializers import UserBriefSerializer

User = get_user_model()
MAX_OFFSET_MINUTES = 366 * 24 * 60


class ReminderOutputSerializer(serializers.ModelSerializer):
    recipient = UserBriefSerializer(read_only=True)
    kind = serializers.SerializerMethodField()
    offset_minutes = serializers.SerializerMethodField(
        help_text="Relative reminders: minutes from the due date (negative = before)."
    )

    class Meta:
        model = Reminder
        fields = [
            "id",
            "task",
            "kind",
            "remind_at",
            "offset_minutes",
            "fire_at",
            "recipient",
            "follows_assignee",
            "note",
            "sent_at",
            "outcome",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_kind(self, reminder) -> str:
        return "relative" if reminder.offset is not None else "absolute"

    def get_offset_minutes(self, reminder) -> int | None:
        return None if reminder.offset is None else int(reminder.offset.total_seconds() // 60)


class ReminderInputSerializer(InputSerializer):
    """Either remind_at (absolute, with an offset) or offset_minutes (relative to the task's due date)."""

    remind_at = AwareDateTimeField(allow_null=True, required=False)
    offset_minutes = serializers.IntegerField(
        allow_null=True,
        required=False,
        min_value=-MAX_OFFSET_MINUTES,
        max_value=MAX_OFFSET_MINUTES,
        help_text="Minutes from the due date; negative = before it (e.g. -60: an hour before).",
    )
    recipient = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        allow_null=True,
        required=False,
        help_text="A project member; default: the assignee (following reassignment), else you.",
    )
    note = serializers.CharField(max_length=200, allow_blank=True, required=False)

    def to_service(self):
        data = dict(self.validated_data)
        if "offset_minutes" in data:
            minutes = data.pop("offset_minutes")
            data["offset"] = None if minutes is None else timedelta(minutes=minutes)
        return data


def document_timing_choice(result, generator, request, public):
    """drf-spectacular postprocessing hook: a new reminder takes exactly one of `remind_at` and `offset_minutes`,
    a change never both (reminders/services.py), which the serializer's fields alone cannot state."""
    schemas = result.get("components", {}).get("schemas", {})
    given = {"remind_at": {"type": "string"}, "offset_minutes": {"type": "integer"}}  # given and not null
    schema = schemas.get("ReminderInputRequest")
    if schema is not None:
        schema["anyOf"] = [{"required": [name], "properties": {name: rule}} for name, rule in given.items()]
        schema["not"] = {"required": list(given), "properties": given}
    patched = schemas.get("PatchedReminderInputRequest")
    if patched is not None:
        # A change may switch kinds (the other field null or absent) but never set both. Whether one null leaves
        # the reminder with no time depends on its current kind: refused as `remind_at_or_offset`.
        patched["not"] = {"required": list(given), "properties": given}
    return result
