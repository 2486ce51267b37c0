from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import AwareDateTimeField
from tasks_app.models import Comment, Membership, Priority, Project, Role, Status, Task
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
                  "due_at", "completed_at", "version", "created_at", "updated_at"]


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
