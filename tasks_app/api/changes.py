"""GET /api/v1/changes/ (long-poll) and GET /api/v1/changes/stream/ (Server-Sent Events): tasks_app/changefeed.py."""

import asyncio
import json
import time

from asgiref.sync import sync_to_async
from django.http import JsonResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.conditional import ConditionalMixin
from tasks_app import changefeed, conf
from tasks_app.api.domain_serializers import EventOutputSerializer

PAGE = 100


class ChangesQuerySerializer(serializers.Serializer):
    cursor = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="From the previous answer; `now` starts at the current end of the log; absent: from the oldest kept event.",
    )
    wait = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=changefeed.MAX_WAIT_SECONDS, help_text="Long-poll seconds."
    )
    limit = serializers.IntegerField(required=False, default=PAGE, min_value=1, max_value=500)


def _position(cursor):
    if cursor == "now":
        return changefeed.latest_position()
    if cursor:
        return changefeed.decode_cursor(cursor)
    return (-1, 0)  # before every event


class ChangesView(ConditionalMixin, GenericAPIView):
    """Every change the caller may see, in commit order, from a cursor; `wait` long-polls for the next one."""

    serializer_class = EventOutputSerializer

    @extend_schema(
        parameters=[ChangesQuerySerializer],
        responses={
            200: inline_serializer(
                "ChangesPage",
                {
                    "results": EventOutputSerializer(many=True),
                    "cursor": serializers.CharField(),
                    "has_more": serializers.BooleanField(),
                },
            ),
            410: OpenApiResponse(description="The cursor is older than the log's retention: resync."),
        },
    )
    def get(self, request):
        query = ChangesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        after = _position(q.get("cursor"))
        deadline = time.monotonic() + min(q["wait"], conf.CHANGES_MAX_WAIT_SECONDS)
        rows = changefeed.changes_after(user=request.user, after=after, limit=q["limit"] + 1)
        while not rows and time.monotonic() < deadline:
            changefeed.wait_for_events(after, min(deadline - time.monotonic(), changefeed.POLL_SECONDS))
            rows = changefeed.changes_after(user=request.user, after=after, limit=q["limit"] + 1)
        has_more = len(rows) > q["limit"]
        rows = rows[: q["limit"]]
        cursor = (
            changefeed.encode_cursor(changefeed.position(rows[-1]), rows[-1].created_at)
            if rows
            else changefeed.encode_cursor(after, timezone.now())
        )
        return Response(
            {"results": EventOutputSerializer(rows, many=True).data, "cursor": cursor, "has_more": has_more}
        )


def _stream_user(request):
    """EventSource cannot send headers: the token may come as `?token=` (else the header or the session)."""
    from core.idempotency import authenticated_user

    token = request.GET.get("token")
    if token:
        request.META["HTTP_AUTHORIZATION"] = f"Token {token}"
        request.__dict__.pop("headers", None)  # HttpRequest.headers is cached from META
    return authenticated_user(request)


def _stream_batch(user, after):
    rows = changefeed.changes_after(user=user, after=after, limit=PAGE)
    return [(changefeed.position(e), e.type, json.dumps(EventOutputSerializer(e).data)) for e in rows]


async def change_stream(request):
    """Server-Sent Events: one `id:`/`event:`/`data:` message per change the user may see, in commit order.

    Resumes after `Last-Event-ID` (sent by EventSource on reconnect) or `?last_event_id=`; else starts at the
    current end of the log. Woken by Redis pub/sub after each commit; a comment line every 15 s keeps proxies open.
    """
    user = await sync_to_async(_stream_user)(request)
    if user is None:
        return JsonResponse(
            {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}, status=401
        )
    last = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or ""
    if last.isdigit() and len(last) <= 18:
        after = await sync_to_async(changefeed.position_of)(int(last))
    else:
        after = await sync_to_async(changefeed.latest_position)()

    async def events():
        nonlocal after
        pubsub = None
        try:
            import redis.asyncio as aioredis
            from django.conf import settings

            pubsub = aioredis.Redis.from_url(settings.CELERY_BROKER_URL).pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(changefeed.CHANNEL)
        except Exception:
            pubsub = None
        yield "retry: 1000\n\n"
        try:
            while True:
                batch = await sync_to_async(_stream_batch)(user, after)
                for at, event_type, data in batch:
                    after = at
                    yield f"id: {at[1]}\nevent: {event_type}\ndata: {data}\n\n"
                if len(batch) == PAGE:
                    continue
                woke = None
                if pubsub is not None:
                    try:
                        woke = await pubsub.get_message(timeout=15)
                    except Exception:
                        pubsub = None
                else:
                    await asyncio.sleep(changefeed.POLL_SECONDS)
                    woke = True
                if woke is None:
                    yield ": keep-alive\n\n"
        finally:
            if pubsub is not None:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
