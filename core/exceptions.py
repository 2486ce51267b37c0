"""One domain exception type, turned into 4xx responses by the API exception handler."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A business rule said no. `fields` maps field names to messages; `status` is the HTTP status."""

    status = 400

    def __init__(self, message, *, fields=None, status=None, code="invalid"):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.code = code
        if status is not None:
            self.status = status


class NotFound(ApplicationError):
    status = 404


class Forbidden(ApplicationError):
    status = 403


class Conflict(ApplicationError):
    status = 409


def _django_validation_detail(exc):
    if hasattr(exc, "message_dict"):
        return {k if k != "__all__" else "non_field_errors": v for k, v in exc.message_dict.items()}
    return {"non_field_errors": exc.messages}


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message, "code": exc.code}
        for field, messages in exc.fields.items():
            body[field] = messages if isinstance(messages, list) else [messages]
        return Response(body, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(_django_validation_detail(exc))
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    return exception_handler(exc, context)
