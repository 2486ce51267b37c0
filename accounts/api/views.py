"""Thin views: the token endpoint, a user's own API tokens, and the user lookup."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api import serializers as s
from accounts.models import ApiToken
from core.api import LocationOnCreateMixin
from core.conditional import ConditionalMixin
from core.exceptions import ApplicationError
from core.throttling import AuthThrottle


class LoginView(ConditionalMixin, GenericAPIView):
    """Username and password for a new API token (named "login", expiring after API_TOKEN_DEFAULT_TTL).

    Throttled by the strict `auth` scope per client IP (THROTTLE_RATE_AUTH)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthThrottle]
    # Form bodies too, as DRF's obtain_auth_token took them (`curl -d username=... -d password=...` keeps working).
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    serializer_class = s.LoginInputSerializer

    @extend_schema(auth=[], request=s.LoginInputSerializer, responses={200: s.LoginOutputSerializer})
    def post(self, request):
        data = s.LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request._request, **data.validated_data)
        if user is None or not user.is_active:
            raise ApplicationError("Unable to log in with the credentials given.", code="invalid_credentials")
        token, key = services.api_token_login(user=user)
        return Response({"token": key, "id": token.pk, "expires_at": token.expires_at})


class ApiTokenViewSet(ConditionalMixin, LocationOnCreateMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's own API tokens: list (never the key), create (the key shown once), revoke (DELETE)."""

    queryset = ApiToken.objects.none()
    serializer_class = s.ApiTokenOutputSerializer
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return selectors.api_token_list(user=self.request.user)

    def get_object(self):
        return selectors.api_token_get(user=self.request.user, token_id=self.kwargs["pk"])

    @extend_schema(request=s.ApiTokenInputSerializer, responses={201: s.ApiTokenCreatedSerializer})
    def create(self, request):
        data = s.ApiTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, **data.validated_data)
        token.token = key
        return Response(s.ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(s.ApiTokenOutputSerializer(self.get_object()).data)

    def destroy(self, request, pk=None):
        services.api_token_revoke(token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserLookupViewSet(ConditionalMixin, viewsets.GenericViewSet):
    """Users who share a project with you (and you), by username or name prefix: never anyone else."""

    serializer_class = s.UserLookupSerializer
    filter_backends = []

    def get_queryset(self):
        return selectors.user_lookup_list(user=self.request.user)

    @extend_schema(parameters=[s.UserLookupQuerySerializer])
    def list(self, request):
        query = s.UserLookupQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.user_lookup_list(user=request.user, search=query.validated_data.get("search"))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.UserLookupSerializer(page, many=True).data)
