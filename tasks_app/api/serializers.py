from datetime import timedelta

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import AwareDateTimeField
from tasks_app.models import (
    CatchUp,
    Comment,
    Membership,
    Priority,
    Project,
    RecurrenceMode,
    RecurringTaskTemplate,
    Role,
    Status,
    Task,
)
from tasks_app.selectors import project_list
from tasks_app.validators import validate_timezone

User = get_user_model()


class UserBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name"]


class MeOutputSerializer(serializers.ModelSerializer):
    timezone = serializers.CharField(source="profile.timezone")
    morning_hour = serializers.IntegerField(source="profile.morning_hour")

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "timezone", "morning_hour", "is_staff"]


class MeInputSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    last_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    morning_hour = serializers.IntegerField(min_value=0, max_value=23, required=False)

    def validate_timezone(self, value):
        from django.core.exceptions import ValidationError

        try:
            validate_timezone(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return value


class ProjectOutputSerializer(serializers.ModelSerializer):
    owner = UserBriefSerializer(read_only=True)
    my_role = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = Project
        fields = ["id", "name", "description", "owner", "archived", "my_role", "created_at", "updated_at"]


class ProjectInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10000, allow_blank=True, required=False, default="")
    archived = serializers.BooleanField(required=False)


class MembershipOutputSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "role", "created_at"]


class MembershipInputSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


@extend_schema_field(OpenApiTypes.INT)
class VisibleProjectField(serializers.PrimaryKeyRelatedField):
    """A project id the requester can see; others read as 'does not exist' so ids do not leak."""

    def get_queryset(self):
        return project_list(user=self.context["request"].user)


class TaskOutputSerializer(serializers.ModelSerializer):
    assignee = UserBriefSerializer(read_only=True, allow_null=True)
    created_by = UserBriefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = ["id", "project", "title", "description", "status", "priority", "assignee", "created_by",
                  "due_at", "completed_at", "version", "recurring_template", "occurrence_at", "created_at",
                  "updated_at"]
        read_only_fields = fields


class TaskUpdateInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=20000, allow_blank=True, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), allow_null=True, required=False)
    due_at = AwareDateTimeField(allow_null=True, required=False)


class TaskCreateInputSerializer(TaskUpdateInputSerializer):
    project = VisibleProjectField()
    title = serializers.CharField(max_length=200)


class CommentOutputSerializer(serializers.ModelSerializer):
    author = UserBriefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Comment
        fields = ["id", "task", "author", "body", "created_at", "updated_at"]


class CommentInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=10000)


class RecurringTemplateOutputSerializer(serializers.ModelSerializer):
    assignee = UserBriefSerializer(read_only=True, allow_null=True)
    created_by = UserBriefSerializer(read_only=True, allow_null=True)
    completed_instances = serializers.IntegerField(
        read_only=True, help_text="History count: done instances, including those removed by the retention cleanup.")

    class Meta:
        model = RecurringTaskTemplate
        fields = ["id", "project", "title", "description", "priority", "assignee", "created_by", "rrule", "dtstart",
                  "timezone", "until", "count", "mode", "lead_time", "catch_up", "enabled", "next_occurrence_at",
                  "last_occurrence_at", "last_generated_at", "instances_created", "instances_cleaned",
                  "completed_instances", "version", "created_at", "updated_at"]
        read_only_fields = fields


class RecurringTemplateUpdateInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=20000, allow_blank=True, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), allow_null=True, required=False)
    rrule = serializers.CharField(max_length=500, required=False, help_text="RFC 5545 RRULE, e.g. FREQ=DAILY")
    dtstart = AwareDateTimeField(required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    until = AwareDateTimeField(allow_null=True, required=False)
    count = serializers.IntegerField(min_value=1, max_value=100000, allow_null=True, required=False)
    mode = serializers.ChoiceField(choices=RecurrenceMode.choices, required=False)
    lead_time = serializers.DurationField(min_value=timedelta(0), max_value=timedelta(days=366), required=False)
    catch_up = serializers.ChoiceField(choices=CatchUp.choices, required=False)

    def validate_timezone(self, value):
        from django.core.exceptions import ValidationError

        try:
            validate_timezone(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return value


class RecurringTemplateCreateInputSerializer(RecurringTemplateUpdateInputSerializer):
    project = VisibleProjectField()
    title = serializers.CharField(max_length=200)
    rrule = serializers.CharField(max_length=500, help_text="RFC 5545 RRULE, e.g. FREQ=DAILY")
    dtstart = AwareDateTimeField()
    timezone = serializers.CharField(max_length=64, default="UTC")
    enabled = serializers.BooleanField(default=True)


class PreviewQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=100, default=10)


class OccurrenceSerializer(serializers.Serializer):
    utc = serializers.DateTimeField()
    local = serializers.CharField(help_text="ISO 8601 in the template's timezone, with its offset.")


class PreviewSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    occurrences = OccurrenceSerializer(many=True)
