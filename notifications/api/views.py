"""Thin views over notifications.selectors / services. Users only ever see their own rows."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.conditional import ConditionalMixin
from notifications import selectors, services
from notifications.api import serializers as s
from notifications.models import Notification


class NotificationViewSet(ConditionalMixin, viewsets.GenericViewSet):
    queryset = Notification.objects.none()
    serializer_class = s.NotificationOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"

    @extend_schema(parameters=[s.NotificationListQuerySerializer])
    def list(self, request):
        query = s.NotificationListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.notification_list(user=request.user, unread=query.validated_data.get("unread"))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.NotificationOutputSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses=s.NotificationOutputSerializer,
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = services.notification_mark_read(user=request.user, notification_id=int(pk))
        return Response(s.NotificationOutputSerializer(notification).data)

    @extend_schema(request=None, responses=s.ReadAllSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"updated": services.notification_mark_all_read(user=request.user)})

    @extend_schema(responses=s.UnreadCountSerializer)
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"count": selectors.notification_unread_count(user=request.user)})


class PreferencesView(ConditionalMixin, GenericAPIView):
    serializer_class = s.PreferencesSerializer

    def get(self, request):
        return Response(selectors.preferences_get(user=request.user))

    @extend_schema(request=s.PreferencesSerializer, responses=s.PreferencesSerializer)
    def patch(self, request):
        data = s.PreferencesSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.preferences_update(user=request.user, changes=data.validated_data)
        return Response(selectors.preferences_get(user=request.user))
