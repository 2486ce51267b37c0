"""Thin views: validate shape, call a selector or a service, serialize."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import LocationOnCreateMixin
from core.conditional import ConditionalMixin
from webhooks import selectors, services
from webhooks.api import serializers as s
from webhooks.models import DeliveryState, WebhookDelivery, WebhookSubscription

WEBHOOK_PK = OpenApiParameter("webhook_pk", OpenApiTypes.INT, OpenApiParameter.PATH)
PROJECT_FILTER = s.SubscriptionListQuerySerializer


def _with_secret(sub, secret, code=status.HTTP_200_OK):
    return Response(s.SubscriptionWithSecretSerializer(sub, context={"secret": secret}).data, status=code)


@extend_schema_view(list=extend_schema(parameters=[PROJECT_FILTER]))
class WebhookSubscriptionViewSet(ConditionalMixin, LocationOnCreateMixin, viewsets.GenericViewSet):
    queryset = WebhookSubscription.objects.none()
    serializer_class = s.SubscriptionOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"

    def get_object(self):
        return selectors.subscription_get(user=self.request.user, subscription_id=self.kwargs["pk"])

    def list(self, request):
        query = s.SubscriptionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        project_id = query.validated_data.get("project")
        page = self.paginate_queryset(selectors.subscription_list(user=request.user, project_id=project_id))
        return self.get_paginated_response(s.SubscriptionOutputSerializer(page, many=True).data)

    @extend_schema(request=s.SubscriptionInputSerializer, responses={201: s.SubscriptionWithSecretSerializer})
    def create(self, request):
        data = s.SubscriptionInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        sub, secret = services.subscription_create(actor=request.user, **data.validated_data)
        return _with_secret(sub, secret, status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(s.SubscriptionOutputSerializer(self.get_object()).data)

    def _update(self, request, partial):
        sub = self.get_object()
        data = s.SubscriptionUpdateSerializer(data=request.data, partial=partial, context={"request": request})
        data.is_valid(raise_exception=True)
        sub = services.subscription_update(subscription=sub, actor=request.user, data=data.validated_data)
        return Response(s.SubscriptionOutputSerializer(sub).data)

    @extend_schema(request=s.SubscriptionUpdateSerializer, responses=s.SubscriptionOutputSerializer)
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    @extend_schema(request=s.SubscriptionUpdateSerializer, responses=s.SubscriptionOutputSerializer)
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def destroy(self, request, pk=None):
        services.subscription_delete(subscription=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.RotateSecretInputSerializer, responses=s.SubscriptionWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        sub = self.get_object()
        data = s.RotateSecretInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sub, secret = services.subscription_rotate_secret(
            subscription=sub, actor=request.user, grace_hours=data.validated_data.get("grace_period_hours")
        )
        return _with_secret(sub, secret)

    @extend_schema(request=None, responses={202: s.DeliveryOutputSerializer})
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        delivery = services.subscription_ping(subscription=self.get_object(), actor=request.user)
        return Response(s.DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            WEBHOOK_PK,
            OpenApiParameter("state", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=DeliveryState.values),
            OpenApiParameter("event_type", OpenApiTypes.STR, OpenApiParameter.QUERY),
        ]
    ),
    retrieve=extend_schema(parameters=[WEBHOOK_PK], responses=s.DeliveryDetailSerializer),
    redeliver=extend_schema(parameters=[WEBHOOK_PK], request=None, responses={202: s.DeliveryOutputSerializer}),
)
class WebhookDeliveryViewSet(ConditionalMixin, viewsets.GenericViewSet):
    queryset = WebhookDelivery.objects.none()
    serializer_class = s.DeliveryOutputSerializer
    filter_backends = []
    lookup_value_regex = r"\d+"

    def _subscription(self):
        return selectors.subscription_get(user=self.request.user, subscription_id=self.kwargs["webhook_pk"])

    def list(self, request, webhook_pk=None):
        sub = self._subscription()
        filters = s.DeliveryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.delivery_list(subscription=sub, **filters.validated_data)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.DeliveryOutputSerializer(page, many=True).data)

    def retrieve(self, request, webhook_pk=None, pk=None):
        delivery = selectors.delivery_get(subscription=self._subscription(), delivery_id=pk)
        return Response(s.DeliveryDetailSerializer(delivery).data)

    @action(detail=True, methods=["post"])
    def redeliver(self, request, webhook_pk=None, pk=None):
        delivery = selectors.delivery_get(subscription=self._subscription(), delivery_id=pk)
        copy = services.delivery_redeliver(delivery=delivery, actor=request.user)
        return Response(s.DeliveryOutputSerializer(copy).data, status=status.HTTP_202_ACCEPTED)
