"""Thin views: analytics snapshots and export jobs."""

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from analytics import selectors, services
from analytics.api import serializers as s
from analytics.models import ExportJob, ExportStatus
from core.conditional import ConditionalMixin
from core.exceptions import ApplicationError, Conflict
from tasks_app.selectors import project_get

# The download's media type per format, as the schema states it (FileResponse would guess from the name).
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class MyAnalyticsView(ConditionalMixin, GenericAPIView):
    serializer_class = s.UserAnalyticsSerializer

    def get(self, request):
        snapshot = services.analytics_user_current(user=request.user)
        return Response(s.UserAnalyticsSerializer(snapshot).data)


class ProjectAnalyticsView(ConditionalMixin, GenericAPIView):
    serializer_class = s.ProjectAnalyticsSerializer

    def get(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        snapshot = services.analytics_project_current(project=project)
        return Response(s.ProjectAnalyticsSerializer(snapshot).data)


class ExportViewSet(ConditionalMixin, viewsets.GenericViewSet):
    queryset = ExportJob.objects.none()
    serializer_class = s.ExportOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"

    def get_object(self):
        return selectors.export_get(user=self.request.user, export_id=self.kwargs["pk"])

    def list(self, request):
        page = self.paginate_queryset(selectors.export_list(user=request.user))
        return self.get_paginated_response(s.ExportOutputSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(request=s.ExportCreateSerializer, responses={202: s.ExportOutputSerializer})
    def create(self, request):
        data = s.ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        # Idempotency-Key is honoured by core.idempotency, like on every POST.
        job = services.export_create(
            requester=request.user,
            format=v["format"],
            project_id=v.get("project"),
            filters=v.get("filters"),
            fields=v.get("fields"),
        )
        return Response(
            s.ExportOutputSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )

    def retrieve(self, request, pk: int = None):
        return Response(s.ExportOutputSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, CONTENT_TYPES["xlsx"]): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="Not yours, or no such export."),
            409: OpenApiResponse(description="Not finished."),
            410: OpenApiResponse(description="Expired."),
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk: int = None):
        job = self.get_object()
        if job.expires_at <= timezone.now():
            raise ApplicationError("This export has expired.", status=410, code="expired")
        if job.status != ExportStatus.SUCCEEDED or not job.file:
            raise Conflict("This export is not ready.", code="not_ready")
        return FileResponse(
            job.file.open("rb"),
            as_attachment=True,
            filename=f"tasks-export-{job.pk}.{job.format}",
            content_type=CONTENT_TYPES[job.format],
        )
