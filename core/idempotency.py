"""Idempotency-Key on every POST under /api/: one middleware for every endpoint (exports included).

Contract (documented in README "Safe retries"):
- Keys are per user (anonymous POSTs, e.g. `auth/token/`, ignore the header), 1-255 visible ASCII characters.
- The first request with a key claims it (a committed row), then runs in one transaction with the row
  update that records its answer, so the answer is stored if and only if the work committed.
- Same key + same method, path and body within 24 h → the stored status and body, byte for byte, with
  `Idempotent-Replayed: true`; nothing runs again.
- Same key + a different request → 422 `idempotency_key_reused`.
- Same key while the first request is still running → 409 `idempotency_key_in_use` with `Retry-After: 1`
  (we answer rather than wait: a waiting request would hold a worker for as long as the first one runs).
  A claim whose request died is taken over after `IDEMPOTENCY_LOCK_SECONDS` (its work rolled back with it).
- Only 2xx answers are stored. A 4xx changed nothing (services are atomic), and a 5xx rolled back, so the
  key is released and a retry runs again.
- Storage is the `core.IdempotencyKey` table, not Redis: a Redis restart without persistence would forget
  every key and a client's retry would then create a second row; the table lives and dies with the rows the
  requests wrote. `core.cleanup_idempotency_keys` (seeded hourly) deletes expired keys.
"""

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from core import conf
from core.exceptions import ApplicationError, Conflict, application_error_body
from core.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("Content-Type", "Location", "ETag")


def _ttl():
    return timedelta(seconds=conf.IDEMPOTENCY_TTL_SECONDS)


def _lock():
    return timedelta(seconds=conf.IDEMPOTENCY_LOCK_SECONDS)


class KeyReused(ApplicationError):
    status = 422


class _Release(Exception):
    def __init__(self, response):
        self.response = response


def request_fingerprint(request):
    h = hashlib.sha256()
    for part in (request.method, request.get_full_path(), request.content_type or ""):
        h.update(part.encode() + b"\0")
    h.update(request.body)
    return h.hexdigest()


def idempotency_claim(*, user, key, fingerprint):
    """Claim `key` for a new request. Returns (row, None) when claimed, (row, "replay") when answered before.

    Raises KeyReused (another request used the key) or Conflict (the first request is still running).
    """
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    user=user,
                    key=key,
                    fingerprint=fingerprint,
                    locked_until=now + _lock(),
                    created_at=now,
                    expires_at=now + _ttl(),
                )
            return row, None
        except IntegrityError:
            pass
        row = IdempotencyKey.objects.filter(user=user, key=key).first()
        if row is None:
            continue  # expired and cleaned meanwhile: claim again
        if row.expires_at <= now:
            IdempotencyKey.objects.filter(pk=row.pk, expires_at__lte=now).delete()
            continue
        if row.fingerprint != fingerprint:
            raise KeyReused(
                "This Idempotency-Key was used for a different request; use a new key for a new request.",
                fields={"idempotency_key": "Already used with another method, path or body."},
                code="idempotency_key_reused",
            )
        if row.response_status is not None:
            return row, "replay"
        if row.locked_until > now:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry shortly.",
                code="idempotency_key_in_use",
            )
        # The first request died without an answer (its transaction rolled back): take the claim over.
        if IdempotencyKey.objects.filter(pk=row.pk, response_status=None, locked_until=row.locked_until).update(
            locked_until=now + _lock()
        ):
            row.refresh_from_db()
            return row, None
    raise Conflict(
        "A request with this Idempotency-Key is still in progress; retry shortly.", code="idempotency_key_in_use"
    )


def idempotency_release(*, row):
    IdempotencyKey.objects.filter(pk=row.pk, response_status=None).delete()


def idempotency_record(*, row, response):
    row.response_status = response.status_code
    row.response_body = response.content
    row.response_headers = {h: response[h] for h in _KEPT_HEADERS if response.has_header(h)}
    row.save(update_fields=["response_status", "response_body", "response_headers"])


def idempotency_cleanup(*, now=None, batch=5000):
    """Delete expired keys in batches. Returns how many."""
    now = now or timezone.now()
    deleted = 0
    while True:
        ids = list(IdempotencyKey.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += IdempotencyKey.objects.filter(pk__in=ids).delete()[0]


def _replay(row):
    response = HttpResponse(bytes(row.response_body), status=row.response_status)
    for name, value in row.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def _error(exc):
    response = JsonResponse(application_error_body(exc), status=exc.status)
    if isinstance(exc, Conflict):
        response["Retry-After"] = "1"
    return response


def authenticated_user(request):
    """The user DRF's authenticators see (token or session), or None."""
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    drf_request = Request(request, authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES])
    try:
        user = drf_request.user
    except APIException:
        return None
    return user if user is not None and user.is_authenticated else None


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        key = key.strip()
        if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
            return _error(
                ApplicationError(
                    "Invalid Idempotency-Key.",
                    fields={"idempotency_key": "1 to 255 printable ASCII characters."},
                    code="invalid",
                )
            )
        user = authenticated_user(request)
        if user is None:
            return self.get_response(request)
        try:
            row, outcome = idempotency_claim(user=user, key=key, fingerprint=request_fingerprint(request))
        except ApplicationError as exc:
            return _error(exc)
        if outcome == "replay":
            return _replay(row)
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if not 200 <= response.status_code < 300 or response.streaming:
                    raise _Release(response)
                idempotency_record(row=row, response=response)
        except _Release as released:
            idempotency_release(row=row)
            return released.response
        except BaseException:
            idempotency_release(row=row)
            raise
        return response
