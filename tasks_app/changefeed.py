"""The change feed: the event log (tasks_app.Event) read in commit order, per user, resumable.

Commit order. Event ids come from a sequence, and two concurrent transactions can commit out of id order:
a reader that saw id 12 could later miss an id 11 that committed after. On PostgreSQL every event row
carries its writing transaction's id (`txid`, a database default), and a reader returns only events of
transactions older than every transaction still running (`pg_snapshot_xmin`), in (txid, id) order. Every
event that becomes visible later belongs to a transaction at or after that horizon, so it sorts after
whatever was already returned: nothing is skipped, and writers take no lock (an earlier design serialized
writers with an advisory lock taken mid-transaction, which deadlocked against row locks under load). The
cost is a lag: an event waits until every write transaction that was running when it committed has ended
(a long write transaction elsewhere delays the feed by its length; read-only transactions do not count).
SQLite runs one write transaction at a time (IMMEDIATE): txid is 0 and id order is commit order.

A position in the feed is the pair (txid, id) of the last event read; cursors carry it, opaquely.

Visibility is evaluated when an event is read: events of projects the user is a member of right now (staff:
all). A member who is removed stops receiving the project's events from that moment on, including events
that happened while they were still a member but that they had not read yet.

Wake-ups go through Redis pub/sub (channel CHANNEL, published after commit); the content always comes from
the database, so a lost message only delays a reader until its next poll (POLL_SECONDS).
"""

import base64
import binascii
import json
import logging
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import ApplicationError
from tasks_app import conf
from tasks_app.models import Event

log = logging.getLogger(__name__)

CHANNEL = "taskmgmt:events"
POLL_SECONDS = 5.0
MAX_WAIT_SECONDS = 30


class CursorExpired(ApplicationError):
    status = 410


def events_publish_on_commit(events):
    """After commit, wake feed and stream readers (ids and projects only)."""
    payload = json.dumps([[e.pk, e.project_id] for e in events])

    def publish():
        try:
            from core.redis import client

            client().publish(CHANNEL, payload)
        except Exception as exc:  # readers fall back to polling
            log.warning("change feed wake-up not published: %s", exc.__class__.__name__)

    transaction.on_commit(publish)


def encode_cursor(position, created_at):
    """An opaque cursor for a feed position (txid, event id) read at `created_at` (for the retention check)."""
    txid, event_id = position
    raw = json.dumps([event_id, created_at.isoformat() if created_at else None, txid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token):
    """The position (txid, event id) of a cursor; raises 400 for a malformed one and 410 for an expired one."""
    from django.utils.dateparse import parse_datetime

    try:
        decoded = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
        if not isinstance(decoded, list) or len(decoded) not in (2, 3):
            raise ValueError
        event_id, created = decoded[:2]
        txid = decoded[2] if len(decoded) == 3 else None
        created_at = parse_datetime(created) if created else None
        if not isinstance(event_id, int) or event_id < 0 or (created and created_at is None):
            raise ValueError
        if txid is not None and (not isinstance(txid, int) or txid < 0):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApplicationError(
            "Invalid cursor.", fields={"cursor": "Not a cursor this feed issued."}, code="invalid_cursor"
        ) from None
    days = conf.EVENT_RETENTION_DAYS
    if days and created_at is not None and created_at < timezone.now() - timedelta(days=days):
        raise CursorExpired(
            f"This cursor is older than the event log's retention ({days} days): events after it may be gone. "
            "Resync: re-read the lists you keep (GET /api/v1/projects/, /api/v1/tasks/, ...), then follow the "
            "feed from GET /api/v1/changes/?cursor=now.",
            code="cursor_expired",
        )
    return (txid, event_id) if txid is not None else position_of(event_id)


def position_of(event_id):
    """The position of event `event_id` (an SSE Last-Event-ID, or a cursor of two fields). An event gone since
    (retention) resumes after the last kept event at or before that id."""
    row = Event.objects.filter(id__lte=event_id).order_by("-id").values_list("txid", "id").first()
    return (row[0], event_id) if row else (0, event_id)


def _readable():
    """Events whose transaction has ended before every running one began (PostgreSQL), plus the reader's
    own transaction's (tests read inside their transaction). SQLite: all."""
    if connection.vendor != "postgresql":
        return Q()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, pg_current_xact_id_if_assigned()::text::bigint"
        )
        horizon, own = cursor.fetchone()
    readable = Q(txid__lt=horizon)
    return readable | Q(txid=own) if own is not None else readable


def _after(position):
    txid, event_id = position
    return (Q(txid__gt=txid) | Q(txid=txid, id__gt=event_id)) & _readable()


def visible_events(*, user):
    qs = Event.objects.all()
    if not user.is_staff:
        qs = qs.filter(project__memberships__user=user)
    return qs


def changes_after(*, user, after, limit):
    """Up to `limit` events visible to `user` after position `after`, in commit order."""
    qs = visible_events(user=user).filter(_after(after)).select_related("actor").order_by("txid", "id")
    return list(qs[:limit])


def position(event):
    return (event.txid, event.pk)


def latest_position():
    """The current end of the readable log: following from here skips nothing that commits later."""
    row = Event.objects.filter(_readable()).order_by("-txid", "-id").values_list("txid", "id").first()
    return tuple(row) if row else (0, 0)


def wait_for_events(after, timeout):
    """Block until an event after position `after` may be readable (a pub/sub message) or `timeout` passes."""
    try:
        from core.redis import client

        pubsub = client().pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL)
    except Exception:
        return False
    try:
        if Event.objects.filter(_after(after)).exists():  # committed before we subscribed
            return True
        message = pubsub.get_message(timeout=timeout)
        return message is not None
    except Exception:
        return False
    finally:
        try:
            pubsub.close()
        except Exception:
            pass
