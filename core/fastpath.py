"""A polling client's conditional list GET answered 304 before Django REST framework runs.

A front end polls a list with `If-None-Match: <the list ETag>`. The full path authenticates, throttles, builds
the filtered queryset and runs the list's fingerprint query (core/pagination.py) only to answer 304; nearly all
of its cost is building and compiling that query in Python, the same query on every poll.

So when the full path answers a page-number list for a token-authenticated request, it keeps what it computed
(`remember`): the fingerprint query as compiled SQL with its parameters, keyed by the token's digest and the full
path. The next conditional GET of the same path with the same token (`answer`):

1. checks the token again with one query (it exists, has not expired, its user is active, is the one the entry
   was made for, and is staff or not as then: staff see every task), as the authentication class does; a token
   last used over a minute ago takes the full path, which records its use;
2. counts the request against the view's own throttles, as DRF would (the full path answers a 429);
3. runs the stored fingerprint SQL; the membership and visibility subqueries are part of that SQL, so a member
   removed since sees a different fingerprint;
4. answers 304 when the ETag computed from that fingerprint (the same function as the full path) is one the
   client sent. Anything else — no entry, a changed list, a refused token, a throttle — runs the full path,
   which answers exactly as before.

Not remembered: lists whose fingerprint depends on the clock (`view.list_etag_time_relative`, e.g. `overdue`),
cursor-mode pages (their ETag is their rows), session-authenticated requests (CSRF and session expiry belong
to Django's own machinery). Entries live in each process (a bounded LRU, `FAST_PATH_ENTRIES`), so a restart
or another worker process just takes the full path once.

The connection (PostgreSQL). With the shipped `CONN_MAX_AGE=0` every request opens a database connection, and
for a poll that costs more than the poll itself (the connection, then a new server process's cold caches). So the
fast path keeps one connection of its own per thread (`LIST_POLL_KEEP_CONNECTION`, on by default), in autocommit,
used for nothing else, and sends its two queries in one round trip, as EXECUTEs of statements it PREPAREd there
(`LIST_POLL_PREPARE`; off behind PgBouncer's transaction pooling). It is used only when the request's own
connection is not open (an open one is already paid for, and inside a transaction, as in the tests, only that
one sees the transaction's rows). A database error on it closes it and the request takes the full path; the next
poll connects again. Cost to operators: one more idle connection per web worker thread.
"""

import functools
import itertools
import logging
import os
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from types import SimpleNamespace

import psycopg
from django.db import DatabaseError, connection, connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core import conf
from core.conditional import etag_matches, not_modified_response

FAST_PATH_ENTRIES = 4096
logger = logging.getLogger(__name__)

_entries = OrderedDict()
_lock = threading.Lock()
_serials = itertools.count(1)  # Entry.serial: the name of its prepared statement

# The kept poll connection (below): one per thread, with the statements prepared on it.
_kept = threading.local()
_inherited = []
PREPARED_PER_CONNECTION = 256
_TOKEN_STATEMENT = "tm_poll_token"
_NOW_SLOT = "> %s)"  # the one placeholder of TOKEN_SQL left for the moment of each poll
_prepare_failed = False

TOKEN_SQL = (
    "SELECT t.user_id, t.last_used_at, u.is_staff FROM accounts_apitoken t INNER JOIN auth_user u ON u.id = t.user_id "
    "WHERE t.id = %s AND t.digest = %s AND u.is_active AND (t.expires_at IS NULL OR t.expires_at > %s)"
)


class Entry(SimpleNamespace):
    """token_id, digest, user_id, is_staff, sql, params, etag_key (the fingerprint row → the ETag), seen (the last
    fingerprint row and its ETag), rendered (its SQL with the fixed parameters in, on the kept connection)."""


def remember(request, *, sql, params, etag_key):
    """Called by the full path once it computed a list's fingerprint for this request."""
    token = getattr(request, "auth", None)
    digest = getattr(token, "digest", None)
    if request.method not in ("GET", "HEAD") or digest is None:
        return
    entry = Entry(
        token_id=token.pk,
        digest=digest,
        user_id=token.user_id,
        is_staff=bool(request.user.is_staff),
        sql=sql,
        params=tuple(params),
        etag_key=etag_key,
        seen=None,
        rendered=None,
        serial=next(_serials),
    )
    key = (digest, request.get_full_path())
    with _lock:
        _entries[key] = entry
        _entries.move_to_end(key)
        while len(_entries) > FAST_PATH_ENTRIES:
            _entries.popitem(last=False)


def _lookup(request):
    """The entry for this request's `Authorization: Token <key>` (parsed as DRF's TokenAuthentication does)."""
    auth = request.META.get("HTTP_AUTHORIZATION", "")  # as get_authorization_header(), without request.headers
    try:
        auth = (auth.encode("iso-8859-1") if isinstance(auth, str) else auth).split()
        if len(auth) != 2 or auth[0].lower() != b"token":
            return None
        key = auth[1].decode()
    except UnicodeError:
        return None
    from accounts.tokens import digest

    with _lock:
        return _entries.get((digest(key), request.get_full_path()))


def as_aware_datetime(value):
    """A datetime column as the ORM converts it: SQLite returns it naive in UTC (text, or a datetime)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if isinstance(value, datetime) and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def answer(request, view_class):
    """A 304 for a remembered list whose fingerprint is unchanged, else None (take the full path)."""
    if request.method not in ("GET", "HEAD"):
        return None
    sent = request.META.get("HTTP_IF_NONE_MATCH")  # (request.headers would build a dict of every header)
    if not sent:
        return None
    entry = _lookup(request)
    if entry is None:
        return None
    now = timezone.now()
    try:
        row, fingerprint = _read(entry, now)
    except _KeptConnectionLost:
        return None  # the full path, on the request's own connection
    if row is None or row[0] != entry.user_id:
        return None  # revoked, expired or deactivated: the full path says so
    if bool(row[2]) != entry.is_staff:
        return None  # staff see every task: the stored SQL holds the visibility the user had then
    last_used_at = as_aware_datetime(row[1])
    if last_used_at is None or (now - last_used_at).total_seconds() > 60:
        return None  # the full path records the token's use (at most once a minute)
    shim = SimpleNamespace(
        user=SimpleNamespace(pk=entry.user_id, is_authenticated=True),
        _request=request,
        META=request.META,
    )
    for throttle_class in view_class.throttle_classes:
        if not throttle_class().allow_request(shim, None):
            return None  # the full path answers 429
    seen = entry.seen  # (fingerprint row, its ETag): a list that did not change hashes the same row again
    if seen is not None and seen[0] == fingerprint:
        etag = seen[1]
    else:
        etag = entry.etag_key(fingerprint)
        entry.seen = (fingerprint, etag)
    if not etag_matches(sent, etag):
        return None
    return not_modified_response(etag)


class _KeptConnectionLost(Exception):
    pass


def _kept_connection():
    """This thread's own connection for polls, or None where the request's connection is the one to use."""
    if (
        connection.vendor != "postgresql"
        or not conf.LIST_POLL_KEEP_CONNECTION
        or connection.connection is not None  # open already (or inside a transaction): no cost to save
    ):
        return None
    kept = getattr(_kept, "connection", None)
    if kept is not None and (
        _kept.pid != os.getpid() or kept.settings_dict["NAME"] != connection.settings_dict["NAME"]
    ):
        # A forked child must not use (or close: that would end the parent's session) its parent's connection;
        # a test run that switched databases gets a new one.
        if _kept.pid == os.getpid():
            kept.close()
        else:
            _inherited.append(kept)  # never collected: its finalizer would end the parent's session
        kept = None
    if kept is None:
        kept = connections.create_connection(connection.alias)  # the same settings, outside request handling
        _kept.connection, _kept.pid = kept, os.getpid()
    return kept


def close_kept_connection():
    """Closes this thread's poll connection, if any (tests, before the test database is dropped)."""
    kept = getattr(_kept, "connection", None)
    _kept.connection = None
    if kept is not None and _kept.pid == os.getpid():
        kept.close()


def _read(entry, now):
    """(token row, fingerprint row). Two small queries plan faster on PostgreSQL than one that joins them (0.36
    against 0.55 ms, measured); on PostgreSQL they travel in one round trip (one execute, two statements)."""
    kept = _kept_connection()
    if kept is not None:
        try:
            return _read_kept(kept, entry, now)
        except (DatabaseError, psycopg.Error) as exc:
            try:
                kept.close()
            except (DatabaseError, psycopg.Error):
                pass
            _kept.connection = None
            raise _KeptConnectionLost from exc
    token_params = [entry.token_id, entry.digest, now]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"{TOKEN_SQL}; {entry.sql}", [*token_params, *entry.params])
            row = cursor.fetchone()
            cursor.nextset()
            return row, cursor.fetchone()
        cursor.execute(TOKEN_SQL, token_params)
        row = cursor.fetchone()
        cursor.execute(entry.sql, entry.params)
        return row, cursor.fetchone()


def _prepares():
    return conf.LIST_POLL_PREPARE and not _prepare_failed


def _prepared_on(raw):
    """The names prepared on this psycopg connection (a new connection starts with none)."""
    held = getattr(_kept, "prepared", None)
    if held is None or held[0] is not raw:
        held = _kept.prepared = (raw, set())
    return held[1]


def _read_kept(kept, entry, now):
    """_read() on the kept connection, through psycopg's own cursor (a client-side binding cursor, as Django
    configures it). The entry's statements are rendered once with their fixed parameters (psycopg's mogrify: its
    quoting, the connection's adapters), so no parameter is adapted per poll. With `LIST_POLL_PREPARE` (on unless
    `DISABLE_SERVER_SIDE_CURSORS`, i.e. behind PgBouncer's transaction pooling) they are also PREPAREd on the
    connection once, and each poll EXECUTEs them: PostgreSQL neither parses nor plans them again (0.18 ms per
    poll instead of 0.54, in process). At most PREPARED_PER_CONNECTION are kept (then DEALLOCATE ALL)."""
    global _prepare_failed
    kept.ensure_connection()
    raw = kept.connection
    with raw.cursor() as cursor:
        rendered = entry.rendered
        if rendered is None:
            head = cursor.mogrify(TOKEN_SQL.replace(_NOW_SLOT, "> %%s)"), [entry.token_id, entry.digest])
            execute = cursor.mogrify(f"EXECUTE {_TOKEN_STATEMENT}(%s, %s, ", [entry.token_id, entry.digest])
            rendered = entry.rendered = (head, cursor.mogrify(entry.sql, entry.params), execute)
        head, fingerprint_sql, execute_token = rendered
        moment = f"'{now.isoformat()}'::timestamptz"
        if _prepares():
            names = _prepared_on(raw)
            name = f"tm_poll_{entry.serial}"
            try:
                if name not in names:
                    if len(names) >= PREPARED_PER_CONNECTION:
                        cursor.execute("DEALLOCATE ALL")
                        names.clear()
                    if not names:
                        cursor.execute(f"PREPARE {_TOKEN_STATEMENT} AS {TOKEN_SQL % ('$1', '$2', '$3')}")
                        names.add(_TOKEN_STATEMENT)
                    cursor.execute(f"PREPARE {name} AS {fingerprint_sql}")
                    names.add(name)
                cursor.execute(f"{execute_token}{moment}); EXECUTE {name}")
            except (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement):
                # Statements that vanish between two polls: a pooler (PgBouncer in transaction mode) hands the
                # session's statements to another client. This process stops preparing.
                _prepare_failed = True
                logger.warning("list polls: prepared statements do not hold on this connection; not preparing")
                raise
        else:
            cursor.execute(f"{head.replace(_NOW_SLOT, f'> {moment})', 1)}; {fingerprint_sql}")
        row = cursor.fetchone()
        cursor.nextset()
        return row, cursor.fetchone()


def conditional_list(view):
    """Wraps a ViewSet's list view function (see ListFastPathMixin)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = answer(request, view.cls)
        if response is not None:
            return response
        return view(request, *args, **kwargs)

    return wrapped


class ListFastPathMixin:
    """On a ViewSet: its list route answers a remembered conditional GET before DRF runs."""

    @classmethod
    def as_view(cls, actions=None, **initkwargs):
        view = super().as_view(actions, **initkwargs)
        if actions and actions.get("get") == "list":
            return conditional_list(view)
        return view
