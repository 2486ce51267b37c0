"""One domain exception type, and one error envelope for every 4xx the API answers.

Every error body is

    {"type": "validation_error" | "client_error", "errors": [{"code": ..., "detail": ..., "attr": ...}]}

`code` is a stable machine-readable string, `detail` a message for people, `attr` the field the error is about
(dotted for nested fields and list items, e.g. "filters.due_before" or "events.0"), or null for a non-field
error. The shape follows drf-standardized-errors; api_exception_handler builds it for DRF views, and
ApiErrorEnvelopeMiddleware for the 4xx Django answers itself under /api/ (a URL no route matches, even with DEBUG).
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A business rule said no. `fields` maps field names to messages; `status` is the HTTP status."""

    status = 400
    default_code = "invalid"

    def __init__(self, message, *, fields=None, status=None, code=None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.code = code or self.default_code
        if status is not None:
            self.status = status


class CodedMessage(str):
    """A field's message with an error code of its own, for an ApplicationError that refuses several fields for
    different reasons (the error envelope gives each its code; the error's own code is the fallback)."""

    def __new__(cls, message, code):
        text = super().__new__(cls, message)
        text.code = code
        return text


class NotFound(ApplicationError):
    status = 404
    default_code = "not_found"


class Forbidden(ApplicationError):
    status = 403
    default_code = "permission_denied"


class Conflict(ApplicationError):
    status = 409
    default_code = "conflict"


def _django_validation_detail(exc):
    if hasattr(exc, "error_dict"):
        return {
            (k if k != "__all__" else api_settings.NON_FIELD_ERRORS_KEY): [
                drf_exceptions.ErrorDetail(m, code=e.code or "invalid") for e in errors for m in e.messages
            ]
            for k, errors in exc.error_dict.items()
        }
    return [drf_exceptions.ErrorDetail(m, code=e.code or "invalid") for e in exc.error_list for m in e.messages]


def _flatten(detail, attr=None):
    """DRF's nested error detail (dicts, lists, ErrorDetail) as a flat list of {code, detail, attr}."""
    non_field = api_settings.NON_FIELD_ERRORS_KEY
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            key = str(key)
            sub = attr if key == non_field else (f"{attr}.{key}" if attr else key)
            out += _flatten(value, sub)
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            # A list of messages stays on its field; a list of nested errors (a ListField's children) is indexed.
            out += _flatten(
                value, attr if not isinstance(value, (dict, list)) else f"{attr}.{index}" if attr else str(index)
            )
        return out
    code = getattr(detail, "code", None) or "invalid"
    return [{"code": str(code), "detail": str(detail), "attr": attr}]


def error_body(status, errors):
    kind = "validation_error" if status == 400 and any(e["code"] != "parse_error" for e in errors) else "client_error"
    if status >= 500:
        kind = "server_error"
    return {"type": kind, "errors": errors}


def application_error_body(exc):
    """The error envelope of an ApplicationError (also used outside DRF views, e.g. core/idempotency.py)."""
    if exc.fields:
        errors = []
        for field, messages in exc.fields.items():
            for message in messages if isinstance(messages, list) else [messages]:
                # A message may carry a code of its own (CodedMessage, or a DRF ErrorDetail).
                errors.append(
                    {"code": getattr(message, "code", None) or exc.code, "detail": str(message), "attr": field}
                )
    else:
        errors = [{"code": exc.code, "detail": exc.message, "attr": None}]
    return error_body(exc.status, errors)


def api_exception_handler(exc, context):
    from rest_framework.response import Response

    from core.conditional import NotModified

    if isinstance(exc, NotModified):  # a list the client holds is current: no body (core/pagination.py)
        return Response(status=304, headers={"ETag": exc.etag})
    if isinstance(exc, ApplicationError):
        body = application_error_body(exc)
        headers = {"ETag": exc.etag} if getattr(exc, "etag", None) else None
        return Response(body, status=exc.status, headers=headers)
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(_django_validation_detail(exc))
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = exception_handler(exc, context)  # keeps WWW-Authenticate, Retry-After, Allow headers
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        if isinstance(exc, drf_exceptions.ValidationError):
            errors = _flatten(exc.detail)
        else:
            errors = [
                {"code": str(getattr(exc.detail, "code", exc.default_code)), "detail": str(exc.detail), "attr": None}
            ]
        response.data = error_body(
            response.status_code, errors or [{"code": "invalid", "detail": "Invalid input.", "attr": None}]
        )
    return response


# --- The envelope in the OpenAPI schema -------------------------------------------------------------------------
ERROR_ITEM_COMPONENT = {
    "type": "object",
    "required": ["code", "detail", "attr"],
    "properties": {
        "code": {
            "type": "string",
            "description": "Stable and machine-readable, e.g. required, invalid, max_length, unexpected_field, "
            "not_found, invalid_page, not_authenticated, authentication_failed, permission_denied, "
            "method_not_allowed, unsupported_media_type, parse_error, throttled, conflict, already_member.",
        },
        "detail": {"type": "string", "description": "A message for people; its wording may change."},
        "attr": {
            "type": "string",
            "nullable": True,
            "description": "The field the error is about (dotted for nested fields and list items), null otherwise.",
        },
    },
}
ERROR_COMPONENT = {
    "type": "object",
    "description": "The error envelope every 4xx answer uses (see README, 'Errors').",
    "required": ["type", "errors"],
    "properties": {
        "type": {"type": "string", "enum": ["validation_error", "client_error"]},
        "errors": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/ErrorItem"}},
    },
}
_WRITES = {"post", "put", "patch", "delete"}


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the 4xx answers every operation can give, in the envelope.

    drf-spectacular lists only success codes, so a client (or schemathesis) reading the schema cannot know a
    validation error is a 400. An operation keeps any error it already documents; otherwise it gains
    400 (writes, or reads with query parameters), 401/403 (authenticated operations), 404 (path parameters,
    or a list's invalid page), 409 (writes: a business rule such as a closed task or a finished export),
    415 (a body in a media type the parsers do not take) and 429 (throttled, with Retry-After).
    Every 201 gains its Location header; request bodies refuse unknown properties (core.serializers).
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_COMPONENT
    schemas["ErrorItem"] = ERROR_ITEM_COMPONENT
    for name, schema in schemas.items():
        if name.endswith("Request") and schema.get("type") == "object" and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _WRITES | {"get"}:
                continue
            params = operation.get("parameters", [])
            codes = []
            if method in _WRITES or any(p.get("in") == "query" for p in params):
                codes.append(("400", "Invalid input: one error per field (attr), or a non-field error."))
            if any(operation.get("security") or []):  # absent or [{}]: no login needed
                codes += [("401", "Not authenticated."), ("403", "Not allowed for this user's role.")]
            if "{" in path or any(p.get("name") == "page" for p in params):  # DRF answers a page past the end 404
                codes.append(("404", "Not found, or not visible to this user (or an invalid page: invalid_page)."))
            if method in _WRITES:
                codes.append(("409", "Conflicts with the object's current state."))
            if "requestBody" in operation:
                codes.append(("415", "The body is not in a media type the operation accepts."))
            responses = operation.setdefault("responses", {})
            for code, description in codes:
                responses.setdefault(code, {"description": description, **ref})
                if code in responses and "content" in responses[code]:
                    responses[code]["content"] = ref["content"]
            responses.setdefault(
                "429",
                {
                    "description": "Throttled: too many requests; retry after Retry-After seconds.",
                    "headers": {"Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0}}},
                    **ref,
                },
            )
            for code in ("201",):
                if code in responses:
                    responses[code].setdefault("headers", {})["Location"] = {
                        "required": True,
                        "description": "The URL of the created resource.",
                        "schema": {"type": "string", "format": "uri-reference"},
                    }
    return result


def json_error(status, code, detail):
    return JsonResponse(error_body(status, [{"code": code, "detail": detail, "attr": None}]), status=status)


def json_not_found(request, exception=None):
    """handler404: under /api/, a URL no route matches (e.g. /api/v1/tasks/abc/) answers the JSON envelope like
    every other API 404; elsewhere (admin, browsable pages) Django's usual page."""
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return json_error(404, "not_found", "Not found.")
    return page_not_found(request, exception)


_DJANGO_CODES = {
    400: ("bad_request", "Bad request."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("request_too_large", "The request is too large."),
}


class ApiErrorEnvelopeMiddleware:
    """Under /api/, a 4xx Django answered itself (no route, DEBUG's technical 404, CSRF, a disallowed host, a
    too-large body) becomes the JSON envelope. DRF's own answers are JSON already and pass through."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            400 <= response.status_code < 500
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            code, detail = _DJANGO_CODES.get(response.status_code, ("client_error", "The request was refused."))
            replacement = json_error(response.status_code, code, detail)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response
