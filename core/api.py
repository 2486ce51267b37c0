"""Shared API view pieces: the Location header on 201, and the API root."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from core.conditional import ConditionalMixin


class LocationOnCreateMixin:
    # A 201 names what it created: `Location` is the created object's detail URL (RFC 9110 §15.3.2).
    # (A comment, not a docstring: drf-spectacular would show a docstring as every view's description.)

    def created_lookup_value(self, data):
        return data.get("id")

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == 201 and "Location" not in response and isinstance(response.data, dict):
            value = self.created_lookup_value(response.data)
            if value is not None:
                lookup = self.lookup_url_kwarg or self.lookup_field
                url_kwargs = {k: v for k, v in self.kwargs.items() if k != lookup}
                url_kwargs[lookup] = value
                response["Location"] = reverse(f"{self.basename}-detail", kwargs=url_kwargs, request=request)
        return response


# name in the root -> URL name (list endpoints and single resources a client starts from)
ROOT_LINKS = {
    "me": "me",
    "auth-token": "auth-token",
    "auth-tokens": "api-token-list",
    "users": "user-list",
    "projects": "project-list",
    "tasks": "task-list",
    "recurring-tasks": "recurring-task-list",
    "notifications": "notification-list",
    "notification-preferences": "notification-preferences",
    "webhooks": "webhook-list",
    "exports": "export-list",
    "analytics-me": "analytics-me",
    "schema": "schema",
    "docs": "swagger-ui",
}


class ApiRootView(ConditionalMixin, APIView):
    """The API's entry point: links to its resources and to the OpenAPI schema. Open to anyone (links only)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        responses=inline_serializer("ApiRoot", {name: serializers.URLField() for name in ROOT_LINKS}),
    )
    def get(self, request):
        from django.urls import NoReverseMatch

        links = {}
        for name, url_name in ROOT_LINKS.items():
            try:
                links[name] = reverse(url_name, request=request)
            except NoReverseMatch:  # a resource not installed in this deployment
                continue
        return Response(links)
