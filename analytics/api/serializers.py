from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.exports import EXPORT_FIELDS
from analytics.models import ExportFormat, ExportJob, ExportStatus
from core.schema import UniqueListField
from core.serializers import InputSerializer
from tasks_app.models import Status


class CycleTimeSerializer(serializers.Serializer):
    median = serializers.FloatField(allow_null=True, help_text="Seconds, linear interpolation (percentile_cont).")
    p90 = serializers.FloatField(allow_null=True)
    sample_size = serializers.IntegerField()


class DayCountSerializer(serializers.Serializer):
    date = serializers.DateField()
    completed = serializers.IntegerField()


class ThroughputSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    total = serializers.IntegerField()
    per_day = DayCountSerializer(many=True)


class CountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    completed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    open = serializers.IntegerField()
    overdue = serializers.IntegerField()
    completion_rate = serializers.FloatField(allow_null=True)


class AssigneeMetricsSerializer(CountsSerializer):
    assignee_id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)


class MetricsSerializer(CountsSerializer):
    as_of = serializers.DateTimeField()
    cycle_time_seconds = CycleTimeSerializer()
    throughput = ThroughputSerializer()


class LabelMetricsSerializer(serializers.Serializer):
    label_id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()
    total = serializers.IntegerField(help_text="Tasks carrying the label.")
    open = serializers.IntegerField(help_text="Of those, todo or in progress.")
    done = serializers.IntegerField()


class ProjectMetricsSerializer(MetricsSerializer):
    by_assignee = AssigneeMetricsSerializer(many=True)
    by_label = LabelMetricsSerializer(
        many=True, required=False, help_text="Absent in snapshots computed before labels existed."
    )


class UserAnalyticsSerializer(serializers.Serializer):
    scope = serializers.CharField()
    user = serializers.IntegerField(source="user_id")
    computed_at = serializers.DateTimeField()
    metrics = MetricsSerializer(source="data")


class ProjectAnalyticsSerializer(serializers.Serializer):
    scope = serializers.CharField()
    project = serializers.IntegerField(source="project_id")
    computed_at = serializers.DateTimeField()
    metrics = ProjectMetricsSerializer(source="data")


_ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
_AWARE = {"type": "string", "format": "date-time", "description": "With an offset (a naive time is a 400)."}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "project": _ID,
            "assignee": _ID,
            "status": {
                "oneOf": [
                    {"type": "string", "enum": [s.value for s in Status]},
                    {"type": "array", "items": {"type": "string", "enum": [s.value for s in Status]}},
                ]
            },
            "due_before": _AWARE,
            "due_after": _AWARE,
            "search": {"type": "string", "maxLength": 200},
        },
    }
)
class ExportFiltersField(serializers.DictField):
    """The filters an export replays, in the JSON types the schema states; values are checked in detail (ranges,
    statuses, datetimes) by analytics.services."""

    default_error_messages = {"incorrect_type": "Incorrect type for this filter."}
    _TYPES = {
        "project": "id",
        "assignee": "id",
        "status": "list",
        "due_before": "str",
        "due_after": "str",
        "search": "str",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        errors = {}
        for key, item in value.items():
            kind = self._TYPES.get(key)
            ok = (
                kind is None  # unknown filter: the service names it
                or (kind == "id" and isinstance(item, int) and not isinstance(item, bool))
                or (kind == "str" and isinstance(item, str))
                or (kind == "list" and isinstance(item, (list, str)))
            )
            if not ok:
                errors[key] = [serializers.ErrorDetail("Incorrect type for this filter.", code="incorrect_type")]
        if errors:
            raise serializers.ValidationError(errors)
        return value


class ExportCreateSerializer(InputSerializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    project = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    filters = ExportFiltersField(
        required=False,
        help_text="The task list's filters: project, status (list), assignee, due_before, due_after, search.",
    )
    fields = UniqueListField(
        child=serializers.ChoiceField(choices=sorted(EXPORT_FIELDS)), required=False, allow_empty=False
    )


class ExportOutputSerializer(serializers.ModelSerializer):
    # A plain string: an enum named "status" would collide with the task status enum in the schema.
    status = serializers.CharField(read_only=True, help_text="pending, running, succeeded or failed.")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "format",
            "project",
            "filters",
            "fields",
            "status",
            "progress",
            "row_count",
            "total",
            "error",
            "download_url",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))  # null until the file is ready
    def get_download_url(self, job):
        if job.status != ExportStatus.SUCCEEDED or not job.file:
            return None
        path = reverse("export-download", kwargs={"pk": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path
