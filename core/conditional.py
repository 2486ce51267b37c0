"""Conditional requests (RFC 9110 §13): strong ETags, If-None-Match → 304, If-Match → 412/428.

One mixin, `ConditionalMixin`, is the first base of every API view:

- A single-object response (GET, and the 2xx answer of a PUT/PATCH/POST on one object) carries a strong
  `ETag`: `"v<version>"` when the representation has a `version` (tasks, recurring templates: bumped in
  the same transaction as every change), else `"h<sha256 of the canonical JSON>"`.
  A GET whose `If-None-Match` lists it answers 304 with no body.
- PUT/PATCH/DELETE with `If-Match`: the current ETag is computed first (the same function a GET uses);
  no match → 412 with the current `ETag`. A missing `If-Match` is allowed unless
  `settings.API_REQUIRE_IF_MATCH` is on (then 428). For versioned objects the service also compares the
  version under the row lock (`expected_version`), so two writers holding the same ETag cannot both win.
- Lists: the pagination class (core/pagination.py) fingerprints the filtered queryset with one query and
  answers 304 before a page is read or serialized.
"""

import hashlib
import json

from django.utils.http import parse_etags
from rest_framework.utils.encoders import JSONEncoder

from core import conf
from core.exceptions import ApplicationError

SAFE = frozenset({"GET", "HEAD"})
WRITES = frozenset({"PUT", "PATCH", "DELETE"})
# Actions that answer with one object (a ViewSet's detail actions, or a non-ViewSet GenericAPIView).
SINGLE_ACTIONS = frozenset({"retrieve", "update", "partial_update", "create"})
# (A custom POST action such as rotate-secret answers something other than the object: no ETag.)


class PreconditionFailed(ApplicationError):
    """412: If-Match named an ETag that is no longer current. `etag` is the current one."""

    status = 412

    def __init__(self, message="The resource changed since you read it.", *, etag=None, code="precondition_failed"):
        super().__init__(message, code=code)
        self.etag = etag


class PreconditionRequired(ApplicationError):
    status = 428


class NotModified(Exception):
    """Raised before any serialization when the client's copy is current; turned into a bodiless 304."""

    def __init__(self, etag):
        super().__init__(etag)
        self.etag = etag


def representation_etag(data):
    """The strong ETag of one object's representation (a dict of serializer output)."""
    if isinstance(data, dict) and isinstance(data.get("version"), int):
        return f'"v{data["version"]}"'
    canonical = json.dumps(data, cls=JSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"h' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def version_from_etag(etag):
    """The version a `"v<n>"` ETag stands for, else None."""
    if etag and etag.startswith('"v') and etag.endswith('"') and etag[2:-1].isdigit():
        return int(etag[2:-1])
    return None


def etag_matches(header, etag):
    """RFC 9110 strong comparison of an If-Match / If-None-Match field against `etag` (`*` matches any)."""
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or etag in tags


def not_modified_response(etag):
    from django.http import HttpResponseNotModified

    response = HttpResponseNotModified()
    response["ETag"] = etag
    return response


class ConditionalMixin:
    """First base of every API view (see the module docstring)."""

    def _is_single_object(self, request, response):
        action = getattr(self, "action", None)
        if response.status_code not in (200, 201):
            return False
        if action is None:  # a plain GenericAPIView (me/, preferences, analytics): it answers one object
            return request.method in ("GET", "HEAD", "PUT", "PATCH")
        if action in SINGLE_ACTIONS:
            return True
        # A custom GET action on one object (e.g. a template's preview) has a representation of its own.
        return request.method in SAFE and bool(getattr(getattr(self, action, None), "detail", False))

    def current_etag(self):
        """The ETag a GET of this URL answers now, computed by the view's own GET handler (None: it has none)."""
        handler = getattr(self, "retrieve", None) if getattr(self, "action", None) else getattr(self, "get", None)
        if handler is None:
            return None
        response = handler(self.request, *self.args, **self.kwargs)
        return representation_etag(response.data)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.if_match = None
        if request.method not in WRITES or getattr(self, "action", None) not in (
            "update",
            "partial_update",
            "destroy",
            None,
        ):
            return
        header = request.headers.get("If-Match")
        if not header:
            if conf.API_REQUIRE_IF_MATCH:
                raise PreconditionRequired(
                    "This request must be conditional: send If-Match with the ETag you read.",
                    code="precondition_required",
                )
            return
        current = self.current_etag()
        if current is None:  # nothing a client could have read an ETag from
            return
        if not etag_matches(header, current):
            raise PreconditionFailed(etag=current)
        self.if_match = current

    def expected_version(self):
        """The version the client's If-Match vouched for (None: unconditional). Services compare it under lock."""
        return version_from_etag(self.if_match)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        if isinstance(data, dict) and not response.has_header("ETag") and self._is_single_object(request, response):
            etag = representation_etag(data)
            response["ETag"] = etag
            if request.method in SAFE and etag_matches(request.headers.get("If-None-Match"), etag):
                return not_modified_response(etag)
        return response


# What core/idempotency.py accepts: 1-255 printable ASCII characters, at least one of them visible (the value is
# stripped of surrounding spaces).
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]*[!-~][ -~]*$"}


def document_protocol_headers(result, generator, request, public):
    """drf-spectacular postprocessing hook: the protocol headers and answers of every operation.

    GET: If-None-Match (→ 304); PUT/PATCH/DELETE: If-Match (→ 412, 428 when required);
    POST: Idempotency-Key (→ 409 while the first request runs, 422 when reused for another request).
    """
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    headers = {
        "get": ("If-None-Match", "ETag(s) the client holds: 304 when one is current."),
        "put": ("If-Match", "The ETag the change is based on: 412 when it is no longer current."),
        "patch": ("If-Match", "The ETag the change is based on: 412 when it is no longer current."),
        "delete": ("If-Match", "The ETag the deletion is based on: 412 when it is no longer current."),
        "post": (
            "Idempotency-Key",
            "1 to 255 printable ASCII characters; a retry with the same key and body is answered from the first.",
        ),
    }
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in headers:
                continue
            name, description = headers[method]
            params = operation.setdefault("parameters", [])
            if not any(p.get("name") == name for p in params):
                params.append(
                    {
                        "in": "header",
                        "name": name,
                        "required": False,
                        "schema": IDEMPOTENCY_KEY_SCHEMA if method == "post" else {"type": "string"},
                        "description": description,
                    }
                )
            responses = operation.setdefault("responses", {})
            if method == "get":
                responses.setdefault("304", {"description": "Not modified: the If-None-Match ETag is current."})
            elif method == "post":
                responses.setdefault(
                    "409", {"description": "The Idempotency-Key's first request is still running.", **ref}
                )
                responses.setdefault(
                    "422", {"description": "The Idempotency-Key was used for a different request.", **ref}
                )
            else:
                responses.setdefault("412", {"description": "If-Match names a stale ETag.", **ref})
                responses.setdefault("428", {"description": "If-Match is required (API_REQUIRE_IF_MATCH).", **ref})
    return result
