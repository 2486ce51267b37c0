from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import AwareDateTimeField, TimezoneField
from core.schema import NOT_BLANK_PATTERN
from core.serializers import InputSerializer
from tasks_app.models import (
    CatchUp,
    Comment,
    Label,
    Membership,
    Priority,
    Project,
    RecurrenceMode,
    RecurringTaskTemplate,
    Role,
    Status,
    Task,
)
from tasks_app.selectors import project_list, visible_tasks
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


class MeInputSerializer(InputSerializer):
    first_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    last_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    timezone = TimezoneField(required=False)
    morning_hour = serializers.IntegerField(min_value=0, max_value=23, required=False)

    def validate_timezone(self, value):
        from django.core.exceptions import ValidationError

        try:
            validate_timezone(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return value


class TaskCountsSerializer(serializers.Serializer):
    todo = serializers.IntegerField(source="tasks_todo", read_only=True)
    in_progress = serializers.IntegerField(source="tasks_in_progress", read_only=True)
    done = serializers.IntegerField(source="tasks_done", read_only=True)
    cancelled = serializers.IntegerField(source="tasks_cancelled", read_only=True)


class ProjectOutputSerializer(serializers.ModelSerializer):
    owner = UserBriefSerializer(read_only=True)
    my_role = serializers.CharField(read_only=True, allow_null=True)
    member_count = serializers.IntegerField(read_only=True)
    task_counts = TaskCountsSerializer(source="*", read_only=True, help_text="Tasks per status.")

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "archived",
            "my_role",
            "member_count",
            "task_counts",
            "created_at",
            "updated_at",
        ]


class ProjectInputSerializer(InputSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=10000, allow_blank=True, required=False, default="", trim_whitespace=False
    )
    archived = serializers.BooleanField(required=False)


class MembershipOutputSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "role", "created_at"]


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "description": "A user id."},
            {"type": "string", "minLength": 1, "maxLength": 254, "description": "A username, or an email address."},
        ]
    }
)
class UserReferenceField(serializers.Field):
    """An active user by id (a JSON integer), exact username, or email address (case-insensitive; a string).

    Only an exact match is accepted, so nothing can be searched through it."""

    default_error_messages = {
        "does_not_exist": "No active user with this id, username or email.",
        "ambiguous": "Several users have this email address; use the username or id.",
        "incorrect_type": "A user id (integer), username or email address (string).",
    }

    def to_internal_value(self, data):
        active = User.objects.filter(is_active=True)
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("incorrect_type")
        if isinstance(data, int):
            user = active.filter(pk=data).first() if 0 < data < 2**63 else None
        else:
            user = active.filter(username=data).first()
            if user is None and "@" in data:
                matches = list(active.filter(email__iexact=data)[:2])
                if len(matches) > 1:
                    self.fail("ambiguous")
                user = matches[0] if matches else None
        if user is None:
            self.fail("does_not_exist")
        return user

    def to_representation(self, value):
        return value.pk


class MembershipInputSerializer(InputSerializer):
    user = UserReferenceField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MembershipRoleSerializer(InputSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


@extend_schema_field(OpenApiTypes.INT)
class VisibleProjectField(serializers.PrimaryKeyRelatedField):
    """A project id the requester can see; others read as 'does not exist' so ids do not leak."""

    def get_queryset(self):
        return project_list(user=self.context["request"].user)


@extend_schema_field(OpenApiTypes.INT)
class VisibleTaskField(serializers.PrimaryKeyRelatedField):
    """A task id the requester can see; others read as 'does not exist'."""

    def get_queryset(self):
        return visible_tasks(user=self.context["request"].user).select_related("project")


class LabelBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color"]


class TaskOutputSerializer(serializers.ModelSerializer):
    assignee = UserBriefSerializer(read_only=True, allow_null=True)
    created_by = UserBriefSerializer(read_only=True, allow_null=True)
    labels = LabelBriefSerializer(many=True, read_only=True)
    subtask_count = serializers.IntegerField(read_only=True)
    subtasks_done = serializers.IntegerField(read_only=True)
    comment_count = serializers.IntegerField(read_only=True)
    is_blocked = serializers.BooleanField(read_only=True, help_text="Some task that blocks this one is still open.")
    position = serializers.CharField(read_only=True, help_text="Board rank in the status column (compare as text).")

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "title",
            "description",
            "status",
            "priority",
            "assignee",
            "created_by",
            "due_at",
            "completed_at",
            "version",
            "recurring_template",
            "occurrence_at",
            "parent",
            "labels",
            "position",
            "subtask_count",
            "subtasks_done",
            "comment_count",
            "is_blocked",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TaskUpdateInputSerializer(InputSerializer):
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=20000, allow_blank=True, required=False, trim_whitespace=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), allow_null=True, required=False)
    due_at = AwareDateTimeField(allow_null=True, required=False)
    parent = VisibleTaskField(allow_null=True, required=False, help_text="Parent task (same project).")
    labels = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        max_length=50,
        required=False,
        help_text="Label ids of the task's project; replaces the task's labels.",
    )


class TaskCreateInputSerializer(TaskUpdateInputSerializer):
    project = VisibleProjectField()
    title = serializers.CharField(max_length=200)


class CommentOutputSerializer(serializers.ModelSerializer):
    author = UserBriefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Comment
        fields = ["id", "task", "author", "body", "created_at", "updated_at"]


class CommentInputSerializer(InputSerializer):
    # Kept as sent (code blocks and Markdown keep their indentation); it must hold something besides whitespace.
    body = serializers.CharField(
        max_length=10000,
        trim_whitespace=False,
        validators=[RegexValidator(NOT_BLANK_PATTERN, "Write something.", code="blank")],
    )


class RecurringTemplateOutputSerializer(serializers.ModelSerializer):
    assignee = UserBriefSerializer(read_only=True, allow_null=True)
    created_by = UserBriefSerializer(read_only=True, allow_null=True)
    completed_instances = serializers.IntegerField(
        read_only=True, help_text="History count: done instances, including those removed by the retention cleanup."
    )

    class Meta:
        model = RecurringTaskTemplate
        fields = [
            "id",
            "project",
            "title",
            "description",
            "priority",
            "assignee",
            "created_by",
            "rrule",
            "dtstart",
            "timezone",
            "until",
            "count",
            "mode",
            "lead_time",
            "catch_up",
            "enabled",
            "next_occurrence_at",
            "last_occurrence_at",
            "last_generated_at",
            "instances_created",
            "instances_cleaned",
            "completed_instances",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RecurringTemplateUpdateInputSerializer(InputSerializer):
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=20000, allow_blank=True, required=False, trim_whitespace=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), allow_null=True, required=False)
    rrule = serializers.CharField(max_length=500, required=False, help_text="RFC 5545 RRULE, e.g. FREQ=DAILY")
    dtstart = AwareDateTimeField(required=False)
    timezone = TimezoneField(required=False)
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
    timezone = TimezoneField(default="UTC")
    enabled = serializers.BooleanField(default=True)


class PreviewQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=100, default=10)


class OccurrenceSerializer(serializers.Serializer):
    utc = serializers.DateTimeField()
    local = serializers.CharField(help_text="ISO 8601 in the template's timezone, with its offset.")


class PreviewSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    occurrences = OccurrenceSerializer(many=True)
