"""Reminders of a task: /api/v1/tasks/{task_pk}/reminders/. Viewers read, members write, outsiders get 404."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.response import Response

from core.api import LocationOnCreateMixin
from core.conditional import ConditionalMixin
from reminders import selectors
from reminders.api.serializers import ReminderInputSerializer, ReminderOutputSerializer
from reminders.models import Reminder
from reminders.services import reminder_create, reminder_delete, reminder_update
from tasks_app.selectors import task_get

TASK_PK = OpenApiParameter("task_pk", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_view(
    list=extend_schema(parameters=[TASK_PK]),
    retrieve=extend_schema(parameters=[TASK_PK]),
    create=extend_schema(
        parameters=[TASK_PK], request=ReminderInputSerializer, responses={201: ReminderOutputSerializer}
    ),
    partial_update=extend_schema(
        parameters=[TASK_PK], request=ReminderInputSerializer, responses=ReminderOutputSerializer
    ),
    destroy=extend_schema(parameters=[TASK_PK]),
)
class ReminderViewSet(ConditionalMixin, LocationOnCreateMixin, viewsets.GenericViewSet):
    queryset = Reminder.objects.none()
    serializer_class = ReminderOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"

    def _task(self):
        return task_get(user=self.request.user, task_id=self.kwargs["task_pk"])

    def get_object(self):
        return selectors.reminder_get(task=self._task(), reminder_id=self.kwargs["pk"])

    def _input(self, request, partial):
        data = ReminderInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        return data.to_service()

    def list(self, request, task_pk=None):
        page = self.paginate_queryset(selectors.reminder_list(task=self._task()))
        return self.get_paginated_response(ReminderOutputSerializer(page, many=True).data)

    def retrieve(self, request, task_pk=None, pk=None):
        return Response(ReminderOutputSerializer(self.get_object()).data)

    def create(self, request, task_pk=None):
        task = self._task()
        reminder = reminder_create(task=task, actor=request.user, **self._input(request, partial=False))
        return Response(ReminderOutputSerializer(reminder).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, task_pk=None, pk=None):
        reminder = self.get_object()
        reminder = reminder_update(reminder=reminder, actor=request.user, data=self._input(request, partial=True))
        return Response(ReminderOutputSerializer(reminder).data)

    def destroy(self, request, task_pk=None, pk=None):
        reminder_delete(reminder=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
