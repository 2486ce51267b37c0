"""Serializers of the domain endpoints (labels, relations, activity events, board moves, bulk), the
counterpart of domain_views.py; the core ones (me, projects, memberships, tasks, comments, recurring
templates) are in serializers.py."""

from rest_framework import serializers

from core.serializers import InputSerializer
from tasks_app.api.serializers import UserBriefSerializer, VisibleTaskField
from tasks_app.models import Event, Label, Status


class LabelOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "project", "name", "color", "created_at"]


class LabelInputSerializer(InputSerializer):
    name = serializers.CharField(max_length=50)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False, help_text="#rrggbb")


class EventOutputSerializer(serializers.ModelSerializer):
    actor = UserBriefSerializer(read_only=True, allow_null=True)
    task = serializers.IntegerField(source="task_id", read_only=True, allow_null=True)
    data = serializers.JSONField(
        read_only=True,
        help_text="Event details; updates carry `changes`: {field: [old, new]} (see the README's event catalogue).",
    )

    class Meta:
        model = Event
        fields = ["id", "type", "project", "task", "actor", "data", "created_at"]
        read_only_fields = fields


class TaskMoveInputSerializer(InputSerializer):
    status = serializers.ChoiceField(choices=Status.choices, required=False, help_text="Target column.")
    after = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, allow_null=True, required=False, help_text="Card right above."
    )
    before = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, allow_null=True, required=False, help_text="Card right below."
    )


class RelationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(
        choices=["blocks", "blocked_by", "duplicates", "duplicated_by", "relates_to"],
        help_text="Seen from the task in the URL.",
    )
    task = serializers.IntegerField(help_text="The other task.")
    task_title = serializers.CharField()
    task_status = serializers.CharField()
    created_at = serializers.DateTimeField()


class RelationInputSerializer(InputSerializer):
    type = serializers.ChoiceField(choices=["blocks", "blocked_by", "duplicates", "relates_to"])
    task = VisibleTaskField(help_text="The other task.")


class BulkOperationSerializer(InputSerializer):
    op = serializers.ChoiceField(choices=["update", "move", "add_labels", "remove_labels", "delete"])
    id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Task id.")
    data = serializers.JSONField(
        required=False,
        default=dict,
        allow_null=True,
        help_text="update: TaskUpdateInput fields; move: {status, after, before}; "
        "add_labels/remove_labels: {labels: [ids]}; delete: nothing.",
    )

    def validate_data(self, value):
        return {} if value is None else value  # null: no data, as when it is left out


class BulkLabelsSerializer(InputSerializer):
    labels = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=50
    )


class BulkInputSerializer(InputSerializer):
    operations = BulkOperationSerializer(many=True, min_length=1, max_length=100)


class BulkResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.IntegerField()
    op = serializers.CharField()
    status = serializers.IntegerField(help_text="HTTP status this operation alone would have had.")
    errors = serializers.JSONField(allow_null=True, help_text="The error body, as for a single request.")


class BulkOutputSerializer(serializers.Serializer):
    results = BulkResultSerializer(many=True)
