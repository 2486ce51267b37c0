"""Metric definitions against a crafted dataset whose numbers are computed by hand (see conftest.crafted)."""

from datetime import timedelta

import pytest
from django.db import connection

from analytics import metrics
from analytics.tests.conftest import NOW, bulk_tasks
from tasks_app.models import Status, Task


def throughput_days(data):
    return {d["date"]: d["completed"] for d in data["throughput"]["per_day"] if d["completed"]}


def test_project_metrics_match_hand_computed_values(crafted):
    data = metrics.project_metrics(project_id=crafted.project.pk, now=NOW)
    # 11 tasks: 6 done (t11 has no completed_at), 1 cancelled, 4 open of which t6 and t9 are past due.
    assert {k: data[k] for k in ("created", "completed", "cancelled", "open", "overdue")} == {
        "created": 11,
        "completed": 6,
        "cancelled": 1,
        "open": 4,
        "overdue": 2,
    }
    assert data["completion_rate"] == 0.6  # 6 / (11 - 1)
    # cycle times 1h 2h 3h 4h 10h: median = 3h; p90 at rank 0.9*4 = 3.6 -> 4h + 0.6 * (10h - 4h) = 7.6h
    assert data["cycle_time_seconds"] == {"median": 10800.0, "p90": 27360.0, "sample_size": 5}
    assert data["throughput"]["days"] == 30 and len(data["throughput"]["per_day"]) == 30
    assert data["throughput"]["per_day"][0]["date"] == "2026-02-14"
    assert data["throughput"]["per_day"][-1]["date"] == "2026-03-15"
    assert throughput_days(data) == {"2026-03-12": 2, "2026-03-14": 1, "2026-03-15": 1}
    assert data["throughput"]["total"] == 4


def test_project_breakdown_per_assignee(crafted):
    rows = metrics.project_metrics(project_id=crafted.project.pk, now=NOW)["by_assignee"]
    assert rows == [
        {
            "assignee_id": crafted.alice.pk,
            "username": "alice",
            "created": 5,
            "completed": 3,
            "cancelled": 1,
            "open": 1,
            "overdue": 1,
            "completion_rate": 0.75,
        },
        {
            "assignee_id": crafted.bob.pk,
            "username": "bob",
            "created": 3,
            "completed": 2,
            "cancelled": 0,
            "open": 1,
            "overdue": 0,
            "completion_rate": 0.6667,
        },
        {
            "assignee_id": None,
            "username": None,
            "created": 3,
            "completed": 1,
            "cancelled": 0,
            "open": 2,
            "overdue": 1,
            "completion_rate": 0.3333,
        },
    ]


def test_user_metrics_count_assigned_tasks_across_projects(crafted):
    data = metrics.user_metrics(user_id=crafted.alice.pk, now=NOW)
    assert {k: data[k] for k in ("created", "completed", "cancelled", "open", "overdue", "completion_rate")} == {
        "created": 6,
        "completed": 4,
        "cancelled": 1,
        "open": 1,
        "overdue": 1,
        "completion_rate": 0.8,
    }
    # cycle times 0.5h 1h 2h 10h (even count): median at rank 1.5 -> 1.5h; p90 at 2.7 -> 2h + 0.7 * 8h = 7.6h
    assert data["cycle_time_seconds"] == {"median": 5400.0, "p90": 27360.0, "sample_size": 4}
    assert throughput_days(data) == {"2026-03-12": 2, "2026-03-13": 1, "2026-03-15": 1}
    assert "by_assignee" not in data


def test_empty_scope_has_null_rate_and_percentiles(db):
    from tasks_app.tests.factories import ProjectFactory

    data = metrics.project_metrics(project_id=ProjectFactory().pk, now=NOW)
    assert data["created"] == 0 and data["completion_rate"] is None
    assert data["cycle_time_seconds"] == {"median": None, "p90": None, "sample_size": 0}
    assert data["throughput"]["total"] == 0 and data["by_assignee"] == []


def test_single_done_task_is_both_percentiles(crafted):
    Task.objects.filter(project=crafted.project, status=Status.DONE).exclude(title="t3").update(status=Status.TODO)
    assert metrics.project_metrics(project_id=crafted.project.pk, now=NOW)["cycle_time_seconds"] == {
        "median": 10800.0,
        "p90": 10800.0,
        "sample_size": 1,
    }


@pytest.mark.parametrize("n", [2, 3, 7, 10, 11])
def test_offset_percentiles_follow_the_interpolation_definition(crafted, n):
    """The ORDER BY + OFFSET method (SQLite's, runs everywhere) against the definition on known values."""
    project = crafted.other
    Task.objects.filter(project=project).delete()
    cycles = [float(60 * (i * i + 1)) for i in range(n)]  # distinct, unevenly spaced, whole seconds
    for seconds in reversed(cycles):
        Task.objects.create(
            project=project,
            title="c",
            status=Status.DONE,
            created_at=NOW - timedelta(days=1),
            completed_at=NOW - timedelta(days=1) + timedelta(seconds=seconds),
        )

    def by_definition(p):
        pos = p * (n - 1)
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return round(cycles[lo] + (cycles[hi] - cycles[lo]) * (pos - lo), 1)

    qs = Task.objects.filter(project=project)
    offset = metrics.cycle_time_percentiles(qs, sample_size=n, method="offset")
    assert offset == {"median": by_definition(0.5), "p90": by_definition(0.9)}
    if connection.vendor == "postgresql":
        assert metrics.cycle_time_percentiles(qs, sample_size=n, method="percentile_cont") == offset


def test_query_count_does_not_grow_with_tasks(crafted, django_assert_num_queries):
    # grouped counts + percentiles (1 percentile_cont query on PostgreSQL, 2 OFFSET queries on SQLite) + names
    # + the per-label counts
    expected = 4 if connection.vendor == "postgresql" else 5
    with django_assert_num_queries(expected):
        metrics.project_metrics(project_id=crafted.project.pk, now=NOW)
    bulk_tasks(
        crafted.project,
        200,
        status=Status.DONE,
        assignee=crafted.bob,
        created_at=NOW - timedelta(days=2),
        completed_at=NOW - timedelta(days=1),
    )
    with django_assert_num_queries(expected):
        data = metrics.project_metrics(project_id=crafted.project.pk, now=NOW)
    assert data["created"] == 211 and data["cycle_time_seconds"]["sample_size"] == 205


def test_recurring_instances_count_like_any_task(crafted):
    template_model = Task._meta.get_field("recurring_template").related_model
    template = template_model.objects.create(
        project=crafted.project, title="weekly", rrule="FREQ=WEEKLY", dtstart=NOW - timedelta(days=14)
    )
    for week, status in ((2, Status.DONE), (1, Status.TODO)):
        created = NOW - timedelta(days=7 * week)
        Task.objects.create(
            project=crafted.project,
            title="weekly",
            status=status,
            recurring_template=template,
            occurrence_at=created,
            created_at=created,
            completed_at=created + timedelta(hours=5) if status == Status.DONE else None,
        )
    data = metrics.project_metrics(project_id=crafted.project.pk, now=NOW)
    assert (data["created"], data["completed"], data["open"]) == (13, 7, 5)
    assert data["cycle_time_seconds"]["sample_size"] == 6
    assert throughput_days(data)["2026-03-01"] == 1  # created 03-01 12:00, done 5 h later


def test_project_metrics_count_tasks_per_label(cast):
    from analytics.metrics import project_metrics
    from tasks_app.services.labels import label_create
    from tasks_app.services.tasks import task_create

    bug = label_create(project=cast.project, actor=cast.member, name="bug")
    idle = label_create(project=cast.project, actor=cast.member, name="idle")
    task_create(actor=cast.member, project=cast.project, title="a", labels=[bug.pk])
    task_create(actor=cast.member, project=cast.project, title="b", labels=[bug.pk], status="done")
    task_create(actor=cast.member, project=cast.project, title="c")
    by_label = {row["name"]: row for row in project_metrics(project_id=cast.project.pk)["by_label"]}
    assert by_label["bug"] == {"label_id": bug.pk, "name": "bug", "color": "#808080", "total": 2, "open": 1, "done": 1}
    assert (by_label["idle"]["label_id"], by_label["idle"]["total"]) == (idle.pk, 0)
