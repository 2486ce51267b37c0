"""The one definition of every metric (documented in the README, section "Analytics").

All counting happens in the database: one grouped query per scope, plus one query for the cycle-time
percentiles on PostgreSQL (percentile_cont) or two on SQLite (ORDER BY + OFFSET per percentile), plus
one for assignee names. Python only adds up the groups (at most assignees x 31 rows), never task rows.

Definitions (scope = the tasks counted: a project's tasks, or the tasks assigned to a user):
- created: tasks in the scope (every task that exists, whatever its status; recurring instances too).
- completed: status done.  cancelled: status cancelled.  open: status todo or in_progress.
- overdue: open and due_at < now.
- completion_rate: completed / (created - cancelled), rounded to 4 places; null when that is 0.
- cycle time: completed_at - created_at, in seconds, of done tasks that have completed_at.
  median = p50 and p90 use linear interpolation between closest ranks (PostgreSQL percentile_cont):
  sorted values v[0..n-1], position p*(n-1), v[floor] + (v[ceil] - v[floor]) * fraction. Rounded to 0.1 s.
- throughput: done tasks per UTC day by completed_at, for the last 30 days (today included), zero-filled.
"""

import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import Aggregate, Case, Count, DateField, F, FloatField, Func, Q, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics import conf
from tasks_app.models import Status, Task

OPEN_STATUSES = (Status.TODO, Status.IN_PROGRESS)
PERCENTILES = {"median": Decimal("0.5"), "p90": Decimal("0.9")}
COUNTS = ("created", "completed", "cancelled", "open", "overdue")


class CycleSeconds(Func):
    """completed_at - created_at in seconds, as a float, on PostgreSQL and SQLite."""

    output_field = FloatField()

    def __init__(self, **extra):
        super().__init__(F("completed_at"), F("created_at"), **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="EXTRACT(EPOCH FROM (%(expressions)s))::double precision",
            arg_joiner=" - ",
            **extra,
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate: percentile_cont(p) WITHIN GROUP (ORDER BY expr)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction, **extra):
        super().__init__(expression, fraction=str(Decimal(fraction)), **extra)


def _rate(completed, created, cancelled):
    denominator = created - cancelled
    return round(completed / denominator, 4) if denominator > 0 else None


def _seconds(value):
    return None if value is None else round(float(value), 1)


def _grouped_counts(qs, *, now, since):
    """One query: counts per (assignee, completion day within the throughput window)."""
    day = Case(
        When(status=Status.DONE, completed_at__gte=since, then=TruncDate("completed_at", tzinfo=UTC)),
        default=Value(None),
        output_field=DateField(),
    )
    return list(
        qs.order_by()
        .values("assignee_id", day=day)
        .annotate(
            created=Count("id"),
            completed=Count("id", filter=Q(status=Status.DONE)),
            cancelled=Count("id", filter=Q(status=Status.CANCELLED)),
            open=Count("id", filter=Q(status__in=OPEN_STATUSES)),
            overdue=Count("id", filter=Q(status__in=OPEN_STATUSES, due_at__lt=now)),
            timed=Count("id", filter=Q(status=Status.DONE, completed_at__isnull=False)),
        )
    )


def cycle_time_percentiles(qs, *, sample_size, using="default", method=None):
    """{'median': s, 'p90': s} over the done tasks of qs. `sample_size` is their count (from the grouped query)."""
    done = qs.filter(status=Status.DONE, completed_at__isnull=False).order_by()
    if not sample_size:
        return dict.fromkeys(PERCENTILES)
    method = method or ("percentile_cont" if connections[using].vendor == "postgresql" else "offset")
    if method == "percentile_cont":
        row = done.aggregate(**{name: PercentileCont(CycleSeconds(), p) for name, p in PERCENTILES.items()})
        return {name: _seconds(row[name]) for name in PERCENTILES}
    return {name: _seconds(_percentile_by_offset(done, sample_size, p)) for name, p in PERCENTILES.items()}


def _percentile_by_offset(done, n, p):
    """Same definition as percentile_cont, for databases without it: fetch the two closest ranks only."""
    position = p * (n - 1)
    lower = math.floor(position)
    fraction = float(position - lower)
    values = list(
        done.annotate(cycle=CycleSeconds()).order_by("cycle").values_list("cycle", flat=True)[lower : lower + 2]
    )
    if not values:
        return None
    if len(values) == 1 or fraction == 0:
        return values[0]
    return values[0] + (values[1] - values[0]) * fraction


def _throughput(groups, *, today, days):
    per_day = {}
    for g in groups:
        if g["day"] is not None:
            per_day[g["day"]] = per_day.get(g["day"], 0) + g["completed"]
    series = [
        {"date": (today - timedelta(days=i)).isoformat(), "completed": per_day.get(today - timedelta(days=i), 0)}
        for i in range(days - 1, -1, -1)
    ]
    return {"days": days, "total": sum(d["completed"] for d in series), "per_day": series}


def _sum(groups):
    totals = dict.fromkeys((*COUNTS, "timed"), 0)
    for g in groups:
        for key in totals:
            totals[key] += g[key]
    return totals


def compute(qs, *, now=None, by_assignee=False, using="default"):
    """The metrics of the tasks in `qs` (a Task queryset), as a JSON-ready dict."""
    now = now or timezone.now()
    days = conf.ANALYTICS_THROUGHPUT_DAYS
    today = now.astimezone(UTC).date()
    since = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)
    groups = _grouped_counts(qs, now=now, since=since)
    totals = _sum(groups)
    data = {
        "as_of": now.isoformat(),
        **{key: totals[key] for key in COUNTS},
        "completion_rate": _rate(totals["completed"], totals["created"], totals["cancelled"]),
        "cycle_time_seconds": {
            **cycle_time_percentiles(qs, sample_size=totals["timed"], using=using),
            "sample_size": totals["timed"],
        },
        "throughput": _throughput(groups, today=today, days=days),
    }
    if by_assignee:
        data["by_assignee"] = _by_assignee(groups)
    return data


def _by_assignee(groups):
    per = {}
    for g in groups:
        row = per.setdefault(g["assignee_id"], dict.fromkeys(COUNTS, 0))
        for key in COUNTS:
            row[key] += g[key]
    names = (
        dict(get_user_model().objects.filter(pk__in=[k for k in per if k is not None]).values_list("pk", "username"))
        if any(k is not None for k in per)
        else {}
    )
    rows = [
        {
            "assignee_id": assignee_id,
            "username": names.get(assignee_id),
            **counts,
            "completion_rate": _rate(counts["completed"], counts["created"], counts["cancelled"]),
        }
        for assignee_id, counts in per.items()
    ]
    return sorted(rows, key=lambda r: (r["assignee_id"] is None, r["username"] or "", r["assignee_id"] or 0))


def project_metrics(*, project_id, now=None):
    data = compute(Task.objects.filter(project_id=project_id), now=now, by_assignee=True)
    data["by_label"] = label_counts(project_id=project_id)
    return data


def label_counts(*, project_id):
    """Per label of the project: tasks carrying it in all, open (todo/in progress) and done. One query."""
    from django.db.models import Count, Q

    from tasks_app.models import Label

    rows = (
        Label.objects.filter(project_id=project_id)
        .annotate(
            total=Count("task_labels"),
            open=Count("task_labels", filter=Q(task_labels__task__status__in=["todo", "in_progress"])),
            done=Count("task_labels", filter=Q(task_labels__task__status="done")),
        )
        .order_by("name", "id")
        .values("id", "name", "color", "total", "open", "done")
    )
    return [{"label_id": r.pop("id"), **r} for r in rows]


def user_metrics(*, user_id, now=None):
    """A user's metrics count the tasks assigned to them, in every project."""
    return compute(Task.objects.filter(assignee_id=user_id), now=now)
