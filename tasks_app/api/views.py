"""Thin views: validate shape, call a selector or a service, serialize."""

from django.db.models import Max, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, pagination, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api import LocationOnCreateMixin
from core.conditional import ConditionalMixin
from core.fastpath import ListFastPathMixin
from core.pagination import BoundedPageSizeMixin
from tasks_app import selectors
from tasks_app.api import domain_serializers as ds
from tasks_app.api import serializers as s
from tasks_app.api.domain_views import TaskBoardBulkMixin
from tasks_app.api.task_rows import task_rows, task_values
from tasks_app.models import Comment, Event, Membership, Project, RecurrenceMode, RecurringTaskTemplate, Task
from tasks_app.recurring.templates import (
    recurring_template_create,
    recurring_template_delete,
    recurring_template_pause,
    recurring_template_resume,
    recurring_template_update,
)
from tasks_app.services.comments import comment_create, comment_delete, comment_update
from tasks_app.services.profiles import profile_update
from tasks_app.services.projects import (
    membership_add,
    membership_remove,
    membership_update,
    project_create,
    project_delete,
    project_update,
)
from tasks_app.services.tasks import task_create, task_delete, task_update

TASK_PK = OpenApiParameter("task_pk", OpenApiTypes.INT, OpenApiParameter.PATH)
PROJECT_PK = OpenApiParameter("project_pk", OpenApiTypes.INT, OpenApiParameter.PATH)


class MeView(ConditionalMixin, GenericAPIView):
    serializer_class = s.MeOutputSerializer

    def get(self, request):
        return Response(s.MeOutputSerializer(request.user).data)

    @extend_schema(request=s.MeInputSerializer, responses=s.MeOutputSerializer)
    def patch(self, request):
        data = s.MeInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        user = profile_update(user=request.user, data=data.validated_data)
        user.profile.refresh_from_db()
        return Response(s.MeOutputSerializer(user).data)


class ProjectViewSet(ConditionalMixin, LocationOnCreateMixin, viewsets.GenericViewSet):
    queryset = Project.objects.none()
    serializer_class = s.ProjectOutputSerializer
    filter_backends = []
    # The list shows the caller's role, which lives on Membership: fingerprint it too (core/pagination.py).
    list_etag_columns = ("id", "updated_at", "my_role")

    def get_object(self):
        return selectors.project_get(user=self.request.user, project_id=self.kwargs["pk"])

    def list(self, request):
        page = self.paginate_queryset(selectors.project_list(user=request.user))
        return self.get_paginated_response(s.ProjectOutputSerializer(page, many=True).data)

    @extend_schema(request=s.ProjectInputSerializer, responses={201: s.ProjectOutputSerializer})
    def create(self, request):
        data = s.ProjectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data.validated_data.pop("archived", None)
        project = project_create(actor=request.user, **data.validated_data)
        project = selectors.project_get(user=request.user, project_id=project.pk)
        return Response(s.ProjectOutputSerializer(project).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(s.ProjectOutputSerializer(self.get_object()).data)

    @extend_schema(request=s.ProjectInputSerializer, responses=s.ProjectOutputSerializer)
    def partial_update(self, request, pk=None):
        project = self.get_object()
        data = s.ProjectInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project_update(project=project, actor=request.user, data=data.validated_data)
        return Response(s.ProjectOutputSerializer(self.get_object()).data)

    @extend_schema(request=s.ProjectInputSerializer, responses=s.ProjectOutputSerializer)
    def update(self, request, pk=None):
        project = self.get_object()
        data = s.ProjectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project_update(project=project, actor=request.user, data=data.validated_data)
        return Response(s.ProjectOutputSerializer(self.get_object()).data)

    def destroy(self, request, pk=None):
        project_delete(project=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(parameters=[PROJECT_PK]),
    retrieve=extend_schema(parameters=[PROJECT_PK]),
    create=extend_schema(
        parameters=[PROJECT_PK], request=s.MembershipInputSerializer, responses={201: s.MembershipOutputSerializer}
    ),
    partial_update=extend_schema(
        parameters=[PROJECT_PK], request=s.MembershipRoleSerializer, responses=s.MembershipOutputSerializer
    ),
    destroy=extend_schema(parameters=[PROJECT_PK]),
)
class MembershipViewSet(ConditionalMixin, LocationOnCreateMixin, viewsets.GenericViewSet):
    queryset = Membership.objects.none()
    serializer_class = s.MembershipOutputSerializer
    lookup_field = "user_id"
    lookup_value_regex = r"\d{1,18}"  # ids are 64-bit: a longer one is a 404 from the router, not an overflow
    filter_backends = []

    def _project(self):
        return selectors.project_get(user=self.request.user, project_id=self.kwargs["project_pk"])

    def created_lookup_value(self, data):
        return data["user"]["id"]

    def retrieve(self, request, project_pk=None, user_id=None):
        membership = selectors.membership_get(project=self._project(), user_id=user_id)
        return Response(s.MembershipOutputSerializer(membership).data)

    def list(self, request, project_pk=None):
        page = self.paginate_queryset(selectors.membership_list(project=self._project()))
        return self.get_paginated_response(s.MembershipOutputSerializer(page, many=True).data)

    def create(self, request, project_pk=None):
        project = self._project()
        data = s.MembershipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_add(project=project, actor=request.user, **data.validated_data)
        return Response(s.MembershipOutputSerializer(membership).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, project_pk=None, user_id=None):
        membership = selectors.membership_get(project=self._project(), user_id=user_id)
        data = s.MembershipRoleSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if data.validated_data:  # PATCH {} changes nothing (the schema makes every field optional)
            membership = membership_update(membership=membership, actor=request.user, **data.validated_data)
        return Response(s.MembershipOutputSerializer(membership).data)

    def destroy(self, request, project_pk=None, user_id=None):
        membership = selectors.membership_get(project=self._project(), user_id=user_id)
        membership_remove(membership=membership, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TaskViewSet(
    ListFastPathMixin, ConditionalMixin, LocationOnCreateMixin, TaskBoardBulkMixin, viewsets.GenericViewSet
):
    queryset = Task.objects.none()
    serializer_class = s.TaskOutputSerializer
    filterset_class = selectors.TaskFilter
    ordering_fields = ["due_at", "priority", "created_at", "position"]
    ordering = ["-created_at", "-id"]
    # Filters that read the clock: their list fingerprint is not kept for core/fastpath.py.
    list_etag_time_relative = ("overdue", "due_today")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Task.objects.none()
        return selectors.task_list(user=self.request.user)

    def get_object(self):
        return selectors.task_get(user=self.request.user, task_id=self.kwargs["pk"])

    def list_etag_extra(self):
        """The list's ETag also follows the last event of the caller's projects: rows show comment, subtask and
        label data that change without touching the task row (one scalar subquery in the fingerprint query)."""
        return {"e": Max(Subquery(selectors.latest_visible_event_id(user=self.request.user)))}

    def list(self, request):
        qs = self.filter_queryset(self.get_queryset())
        if "search_rank" in qs.query.annotations and "ordering" not in request.query_params:
            qs = qs.order_by("-search_rank", "-id")  # best matches first unless asked otherwise
        elif qs.query.order_by:
            qs = qs.order_by(*qs.query.order_by, "-id")
        # One values_list() query for the page, rows built without model instances (task_rows.py); the list's
        # fingerprint reads the same rows without the page's columns.
        self.fingerprint_queryset = qs
        page = self.paginate_queryset(task_values(qs))
        return self.get_paginated_response(task_rows(page))

    @extend_schema(request=s.TaskCreateInputSerializer, responses={201: s.TaskOutputSerializer})
    def create(self, request):
        data = s.TaskCreateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        task = task_create(actor=request.user, **data.validated_data)
        return Response(
            s.TaskOutputSerializer(selectors.task_get(user=request.user, task_id=task.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def retrieve(self, request, pk=None):
        return Response(s.TaskOutputSerializer(self.get_object()).data)

    def _update(self, request, partial):
        task = self.get_object()
        data = s.TaskUpdateInputSerializer(data=request.data, partial=partial, context={"request": request})
        data.is_valid(raise_exception=True)
        task_update(task=task, actor=request.user, data=data.validated_data, expected_version=self.expected_version())
        return Response(s.TaskOutputSerializer(self.get_object()).data)

    @extend_schema(request=s.TaskUpdateInputSerializer, responses=s.TaskOutputSerializer)
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    @extend_schema(request=s.TaskUpdateInputSerializer, responses=s.TaskOutputSerializer)
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def destroy(self, request, pk=None):
        task_delete(task=self.get_object(), actor=request.user, expected_version=self.expected_version())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActivityCursorPagination(BoundedPageSizeMixin, pagination.CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema_view(list=extend_schema(parameters=[TASK_PK]))
class TaskActivityViewSet(ConditionalMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The task's history from the event log: who changed what and when, newest first (cursor pages)."""

    queryset = Event.objects.none()
    serializer_class = ds.EventOutputSerializer
    pagination_class = ActivityCursorPagination
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        task = selectors.task_get(user=self.request.user, task_id=self.kwargs["task_pk"])
        return selectors.task_activity(task=task)


@extend_schema_view(
    list=extend_schema(parameters=[TASK_PK]),
    retrieve=extend_schema(parameters=[TASK_PK]),
    create=extend_schema(
        parameters=[TASK_PK], request=s.CommentInputSerializer, responses={201: s.CommentOutputSerializer}
    ),
    partial_update=extend_schema(
        parameters=[TASK_PK], request=s.CommentInputSerializer, responses=s.CommentOutputSerializer
    ),
    destroy=extend_schema(parameters=[TASK_PK]),
)
class CommentViewSet(ConditionalMixin, LocationOnCreateMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Comment.objects.none()
    serializer_class = s.CommentOutputSerializer
    filter_backends = []

    def _task(self):
        return selectors.task_get(user=self.request.user, task_id=self.kwargs["task_pk"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Comment.objects.none()
        return selectors.comment_list(task=self._task())

    def get_object(self):
        return selectors.comment_get(task=self._task(), comment_id=self.kwargs["pk"])

    def retrieve(self, request, task_pk=None, pk=None):
        return Response(s.CommentOutputSerializer(self.get_object()).data)

    def create(self, request, task_pk=None):
        task = self._task()
        data = s.CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comment = comment_create(task=task, actor=request.user, **data.validated_data)
        return Response(s.CommentOutputSerializer(comment).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, task_pk=None, pk=None):
        comment = self.get_object()
        data = s.CommentInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if data.validated_data:  # PATCH {} changes nothing (the schema makes every field optional)
            comment = comment_update(comment=comment, actor=request.user, **data.validated_data)
        return Response(s.CommentOutputSerializer(comment).data)

    def destroy(self, request, task_pk=None, pk=None):
        comment_delete(comment=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("project", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
            OpenApiParameter("enabled", OpenApiTypes.BOOL),
            OpenApiParameter("mode", OpenApiTypes.STR, enum=RecurrenceMode.values),
        ]
    )
)
class RecurringTaskViewSet(ConditionalMixin, LocationOnCreateMixin, viewsets.GenericViewSet):
    """Recurring task templates: same project permissions as tasks (viewers read, members write)."""

    queryset = RecurringTaskTemplate.objects.none()
    serializer_class = s.RecurringTemplateOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"
    list_etag_columns = ("id", "updated_at", "completed_instances")

    def get_object(self):
        return selectors.recurring_template_get(user=self.request.user, template_id=self.kwargs["pk"])

    def _out(self, template):
        return s.RecurringTemplateOutputSerializer(
            selectors.recurring_template_get(user=self.request.user, template_id=template.pk)
        ).data

    def list(self, request):
        qs = selectors.recurring_template_list(user=request.user, filters=request.query_params)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.RecurringTemplateOutputSerializer(page, many=True).data)

    @extend_schema(
        request=s.RecurringTemplateCreateInputSerializer, responses={201: s.RecurringTemplateOutputSerializer}
    )
    def create(self, request):
        data = s.RecurringTemplateCreateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        template = recurring_template_create(actor=request.user, **data.validated_data)
        return Response(self._out(template), status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(s.RecurringTemplateOutputSerializer(self.get_object()).data)

    def _update(self, request, partial):
        template = self.get_object()
        data = s.RecurringTemplateUpdateInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        recurring_template_update(template=template, actor=request.user, data=data.validated_data)
        return Response(self._out(template))

    @extend_schema(request=s.RecurringTemplateUpdateInputSerializer, responses=s.RecurringTemplateOutputSerializer)
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    @extend_schema(request=s.RecurringTemplateUpdateInputSerializer, responses=s.RecurringTemplateOutputSerializer)
    def update(self, request, pk=None):
        return self._update(request, partial=True)

    def destroy(self, request, pk=None):
        recurring_template_delete(template=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[s.PreviewQuerySerializer], responses=s.PreviewSerializer)
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        template = self.get_object()
        query = s.PreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        pairs = selectors.recurring_preview(template=template, count=query.validated_data["count"])
        body = {
            "timezone": template.timezone,
            "occurrences": [{"utc": utc, "local": local.isoformat()} for utc, local in pairs],
        }
        return Response(s.PreviewSerializer(body).data)

    @extend_schema(request=None, responses=s.RecurringTemplateOutputSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        template = recurring_template_pause(template=self.get_object(), actor=request.user)
        return Response(self._out(template))

    @extend_schema(request=None, responses=s.RecurringTemplateOutputSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        template = recurring_template_resume(template=self.get_object(), actor=request.user)
        return Response(self._out(template))
