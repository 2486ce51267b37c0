"""Labels, relations, board moves and bulk edits (thin: validate shape, call services, serialize)."""

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from core.api import LocationOnCreateMixin
from core.conditional import ConditionalMixin
from core.exceptions import ApplicationError, api_exception_handler
from tasks_app import selectors
from tasks_app.api import domain_serializers as ds
from tasks_app.api import serializers as s
from tasks_app.models import Label, TaskRelation
from tasks_app.services.labels import label_create, label_delete, label_update, task_labels_add_remove
from tasks_app.services.relations import relation_add, relation_remove
from tasks_app.services.tasks import task_delete, task_move, task_update

TASK_PK = OpenApiParameter("task_pk", OpenApiTypes.INT, OpenApiParameter.PATH)
PROJECT_PK = OpenApiParameter("project_pk", OpenApiTypes.INT, OpenApiParameter.PATH)


class TaskBoardBulkMixin:
    """`POST /tasks/{id}/move/` and `POST /tasks/bulk/`, mixed into TaskViewSet."""

    @extend_schema(request=ds.TaskMoveInputSerializer, responses=s.TaskOutputSerializer)
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move a card: optionally to another status column, between `after` (above) and `before` (below)."""
        task = self.get_object()
        data = ds.TaskMoveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task_move(task=task, actor=request.user, **data.validated_data)
        return Response(s.TaskOutputSerializer(self.get_object()).data)

    @extend_schema(request=ds.BulkInputSerializer, responses=ds.BulkOutputSerializer)
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """Up to 100 operations, each committed on its own through the single-task services.

        200 with one result per operation (its own status and error body, as a single request would
        get). A failed operation changes nothing and does not stop the others.
        """
        body = ds.BulkInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        results = []
        for index, op in enumerate(body.validated_data["operations"]):
            code, errors = _bulk_one(request, op)
            results.append({"index": index, "id": op["id"], "op": op["op"], "status": code, "errors": errors})
        return Response(ds.BulkOutputSerializer({"results": results}).data)


def _bulk_one(request, op):
    try:
        with transaction.atomic():
            task = selectors.task_get(user=request.user, task_id=op["id"])
            data = op["data"]
            if not isinstance(data, dict):
                raise ApplicationError("`data` must be an object.", fields={"data": "Must be an object."})
            if op["op"] == "update":
                fields = s.TaskUpdateInputSerializer(data=data, partial=True, context={"request": request})
                fields.is_valid(raise_exception=True)
                task_update(task=task, actor=request.user, data=fields.validated_data)
            elif op["op"] == "move":
                fields = ds.TaskMoveInputSerializer(data=data)
                fields.is_valid(raise_exception=True)
                task_move(task=task, actor=request.user, **fields.validated_data)
            elif op["op"] in ("add_labels", "remove_labels"):
                fields = ds.BulkLabelsSerializer(data=data)
                fields.is_valid(raise_exception=True)
                ids = fields.validated_data["labels"]
                add, remove = (ids, ()) if op["op"] == "add_labels" else ((), ids)
                task_labels_add_remove(task=task, actor=request.user, add=add, remove=remove)
            else:
                task_delete(task=task, actor=request.user)
                return 204, None
        return 200, None
    except (ApplicationError, APIException) as exc:
        response = api_exception_handler(exc, {})
        return response.status_code, response.data


@extend_schema_view(
    list=extend_schema(parameters=[PROJECT_PK]),
    retrieve=extend_schema(parameters=[PROJECT_PK]),
    create=extend_schema(
        parameters=[PROJECT_PK], request=ds.LabelInputSerializer, responses={201: ds.LabelOutputSerializer}
    ),
    partial_update=extend_schema(
        parameters=[PROJECT_PK], request=ds.LabelInputSerializer, responses=ds.LabelOutputSerializer
    ),
    destroy=extend_schema(parameters=[PROJECT_PK]),
)
class LabelViewSet(ConditionalMixin, LocationOnCreateMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """A project's labels: members read and create; admins rename, recolour and delete."""

    queryset = Label.objects.none()
    serializer_class = ds.LabelOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"

    def _project(self):
        return selectors.project_get(user=self.request.user, project_id=self.kwargs["project_pk"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Label.objects.none()
        return selectors.label_list(project=self._project())

    def get_object(self):
        return selectors.label_get(project=self._project(), label_id=self.kwargs["pk"])

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(ds.LabelOutputSerializer(self.get_object()).data)

    def create(self, request, project_pk=None):
        project = self._project()
        data = ds.LabelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        label = label_create(project=project, actor=request.user, **data.validated_data)
        return Response(ds.LabelOutputSerializer(label).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, project_pk=None, pk=None):
        label = self.get_object()
        data = ds.LabelInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        label = label_update(label=label, actor=request.user, data=data.validated_data)
        return Response(ds.LabelOutputSerializer(label).data)

    def destroy(self, request, project_pk=None, pk=None):
        label_delete(label=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def relation_view(relation, task):
    """A relation as seen from `task`: blocks/blocked_by, duplicates/duplicated_by, relates_to."""
    outgoing = relation.source_id == task.pk
    other = relation.target if outgoing else relation.source
    kind = relation.type
    if not outgoing and kind in ("blocks", "duplicates"):
        kind = {"blocks": "blocked_by", "duplicates": "duplicated_by"}[kind]
    return {
        "id": relation.pk,
        "type": kind,
        "task": other.pk,
        "task_title": other.title,
        "task_status": other.status,
        "created_at": relation.created_at,
    }


@extend_schema_view(
    list=extend_schema(parameters=[TASK_PK]),
    create=extend_schema(
        parameters=[TASK_PK], request=ds.RelationInputSerializer, responses={201: ds.RelationOutputSerializer}
    ),
    destroy=extend_schema(parameters=[TASK_PK]),
)
class RelationViewSet(ConditionalMixin, LocationOnCreateMixin, viewsets.GenericViewSet):
    """The task's relations to tasks the requester can see."""

    queryset = TaskRelation.objects.none()
    serializer_class = ds.RelationOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"

    def _task(self):
        return selectors.task_get(user=self.request.user, task_id=self.kwargs["task_pk"])

    def list(self, request, task_pk=None):
        task = self._task()
        page = self.paginate_queryset(selectors.relation_list(user=request.user, task=task))
        return self.get_paginated_response(
            ds.RelationOutputSerializer([relation_view(r, task) for r in page], many=True).data
        )

    def create(self, request, task_pk=None):
        task = self._task()
        data = ds.RelationInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        relation = relation_add(
            task=task, actor=request.user, other=data.validated_data["task"], type=data.validated_data["type"]
        )
        return Response(ds.RelationOutputSerializer(relation_view(relation, task)).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, task_pk=None, pk=None):
        task = self._task()
        relation = selectors.relation_get(user=request.user, task=task, relation_id=pk)
        relation_remove(relation=relation, actor=request.user, task=task)
        return Response(status=status.HTTP_204_NO_CONTENT)
