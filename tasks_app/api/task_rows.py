"""The task list's rows, built from one values_list() query instead of model instances + DRF fields.

A page of 50 tasks spends most of its time instantiating models and walking serializer fields; this
builds the very same JSON shape as TaskOutputSerializer (tests/test_task_rows.py compares them row
by row). TaskOutputSerializer stays the schema and the single-object representation.
The page costs two queries whatever its size: the rows (with the counts as subqueries, see
selectors.with_task_counts) and the page's labels.
"""

from datetime import UTC

from tasks_app.selectors import task_labels_by_task

_USER = ("id", "username", "first_name", "last_name")
_SCALARS = ("id", "project_id", "title", "description", "status", "priority")
_TAIL = (
    "due_at",
    "completed_at",
    "version",
    "recurring_template_id",
    "occurrence_at",
    "parent_id",
    "position",
    "subtask_count",
    "subtasks_done",
    "comment_count",
    "is_blocked",
    "created_at",
    "updated_at",
)
_DATETIMES = frozenset({"due_at", "completed_at", "occurrence_at", "created_at", "updated_at"})
COLUMNS = (*_SCALARS, *(f"assignee__{f}" for f in _USER), *(f"created_by__{f}" for f in _USER), *_TAIL)
_OUT_TAIL = (
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


def _dt(value):
    """DRF's DateTimeField representation: ISO 8601 in UTC, with 'Z'."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _user(values):
    return None if values[0] is None else dict(zip(_USER, values, strict=True))


def task_values(queryset):
    """The columns the rows need, as a values_list() queryset (paginate this)."""
    return queryset.select_related(None).values_list(*COLUMNS)


def task_rows(values):
    """Rows shaped like TaskOutputSerializer, from tuples of `task_values()`."""
    values = list(values)
    labels = task_labels_by_task(task_ids=[row[0] for row in values]) if values else {}
    rows = []
    for row in values:
        task_id, project_id, title, description, status, priority = row[:6]
        tail = row[14:]
        out = {
            "id": task_id,
            "project": project_id,
            "title": title,
            "description": description,
            "status": status,
            "priority": priority,
            "assignee": _user(row[6:10]),
            "created_by": _user(row[10:14]),
            "labels": labels.get(task_id, []),
        }
        for name, value in zip(_OUT_TAIL, tail, strict=True):
            out[name] = _dt(value) if name in _DATETIMES else value
        rows.append(out)
    return rows
