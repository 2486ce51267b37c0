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


ERROR_COMPONENT = {
    "type": "object",
    "description": "An error from api_exception_handler: `detail` and `code`, or field names mapped to messages.",
    # Untyped on purpose: a validation error for a body key named "code" or "detail" is a list of messages.
    "properties": {"detail": {"description": "The message (a string) unless a field is named so."},
                   "code": {"description": "A machine-readable code (a string) unless a field is named so."}},
    "additionalProperties": True,
}
_WRITES = {"post", "put", "patch", "delete"}


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the 4xx answers every operation can give.

    drf-spectacular lists only success codes, so a client (or schemathesis) reading the schema cannot know a
    validation error is a 400. An operation keeps any error it already documents; otherwise it gains
    400 (writes, or reads with query parameters), 401/403 (authenticated operations), 404 (path parameters,
    or a list's invalid page), 409 (writes: a business rule such as a closed task or a finished export) and
    415 (a body in a media type the parsers do not take).
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _WRITES | {"get"}:
                continue
            params = operation.get("parameters", [])
            codes = []
            if method in _WRITES or any(p.get("in") == "query" for p in params):
                codes.append(("400", "Invalid input; field names map to messages."))
            if any(operation.get("security") or []):  # absent or [{}]: no login needed
                codes += [("401", "Not authenticated."), ("403", "Not allowed for this user's role.")]
            if "{" in path or any(p.get("name") == "page" for p in params):  # DRF answers a page past the end 404
                codes.append(("404", "Not found, or not visible to this user (or an invalid page)."))
            if method in _WRITES:
                codes.append(("409", "Conflicts with the object's current state."))
            if "requestBody" in operation:
                codes.append(("415", "The body is not in a media type the operation accepts."))
            responses = operation.setdefault("responses", {})
            for code, description in codes:
                responses.setdefault(code, {"description": description, **ref})
    return result


def json_not_found(request, exception=None):
    """handler404: under /api/, a URL no route matches (e.g. /api/v1/tasks/-1/) answers JSON like every other
    API 404; elsewhere (admin, browsable pages) Django's usual page."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)
