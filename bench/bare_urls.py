"""The baselines of bench/api_tasks.py, served with our settings and middleware but none of our API code.

- `api/v1/tasks/`: the prebuilt bytes of our response (no database at all).
- `bare/tasks/`: a bare Django view that runs the very SQL our endpoint ran (captured by the bench, with
  its parameters: token lookup, fingerprint, page) through a raw cursor and builds the same JSON by hand.
"""

import json
import os
from datetime import UTC

from django.db import connection
from django.http import HttpResponse
from django.urls import path

BODY = open(os.environ["BENCH_BARE_BODY"], "rb").read()
QUERIES = json.loads(open(os.environ["BENCH_BARE_SQL"]).read())
USER = ("id", "username", "first_name", "last_name")


def prebuilt(request):
    return HttpResponse(BODY, content_type="application/json")


def _dt(value):
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands datetimes back as text
        from django.utils.dateparse import parse_datetime

        value = parse_datetime(value).replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _user(values):
    return None if values[0] is None else dict(zip(USER, values, strict=True))


TAIL = (
    "due_at",
    "completed_at",
    "version",
    "recurring_template",
    "occurrence_at",
    "parent",
    "position",
    "subtask_count",
    "subtasks_done",
    "comment_count",
    "is_blocked",
    "created_at",
    "updated_at",
)
DATETIMES = {"due_at", "completed_at", "occurrence_at", "created_at", "updated_at"}


def same_sql(request):
    results = []
    with connection.cursor() as cursor:
        for sql, params in QUERIES:  # token, fingerprint, page, the page's labels
            cursor.execute(sql, params)
            results.append(cursor.fetchall())
    count = results[1][0][0]
    labels = {}
    for task_id, label_id, name, color in results[3]:
        labels.setdefault(task_id, []).append({"id": label_id, "name": name, "color": color})
    rows = []
    for r in results[2]:
        row = {
            "id": r[0],
            "project": r[1],
            "title": r[2],
            "description": r[3],
            "status": r[4],
            "priority": r[5],
            "assignee": _user(r[6:10]),
            "created_by": _user(r[10:14]),
            "labels": labels.get(r[0], []),
        }
        for name, value in zip(TAIL, r[14:], strict=True):
            row[name] = _dt(value) if name in DATETIMES else (bool(value) if name == "is_blocked" else value)
        rows.append(row)
    page_size = 50
    nxt = request.build_absolute_uri(f"/api/v1/tasks/?page=2&page_size={page_size}") if count > page_size else None
    body = {"count": count, "next": nxt, "previous": None, "results": rows}
    return HttpResponse(json.dumps(body), content_type="application/json")


urlpatterns = [path("api/v1/tasks/", prebuilt), path("bare/tasks/", same_sql)]
