"""Project analytics over a large project: our metrics (analytics.metrics.project_metrics) vs one
hand-written SQL statement computing the same numbers, in the same run, on PostgreSQL.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/tm_bench7 .venv/bin/python bench/analytics.py [--rows 1000000]
Data is generated once per size with generate_series (kept for reruns). Target: ours / baseline <= 1.2.
Three single-statement baselines are timed (three subqueries over a CTE, the same without the CTE,
and one scan with GROUPING SETS); the fastest one is the baseline.
"""

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from _common import report, setup_django

USERS = 20

# status by i % 10: 0-4 done, 5 cancelled, 6-7 todo, 8-9 in_progress; every 7th task unassigned.
GENERATE = """
INSERT INTO tasks_app_task (project_id, title, description, status, priority, assignee_id, created_by_id,
                            due_at, completed_at, created_at, updated_at{extra_cols})
SELECT %(project)s, 'bench task ' || i,
       CASE WHEN i %% 97 = 0 THEN '=SUM(A1)' ELSE 'generated' END,
       CASE WHEN i %% 10 < 5 THEN 'done' WHEN i %% 10 = 5 THEN 'cancelled'
            WHEN i %% 10 < 8 THEN 'todo' ELSE 'in_progress' END,
       1 + i %% 4,
       CASE WHEN i %% 7 = 0 THEN NULL ELSE (%(users)s::bigint[])[1 + i %% {users}] END,
       %(owner)s,
       CASE WHEN i %% 3 = 0 THEN NULL ELSE %(now)s + ((i %% 60) - 30) * interval '1 day' END,
       CASE WHEN i %% 10 < 5 THEN %(now)s - (i %% 400 + 3) * interval '1 day'
                                  + ((i::bigint * 7919) %% 200000) * interval '1 second' ELSE NULL END,
       %(now)s - (i %% 400 + 3) * interval '1 day' - (i %% 1440) * interval '1 minute',
       %(now)s{extra_vals}
FROM generate_series(1, %(rows)s) AS i
"""


def ensure_project(rows, *, label="analytics"):
    """A project with `rows` generated tasks and USERS members (created once, reused). Returns (project, owner)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from tasks_app.models import Membership, Project, Role, Task

    User = get_user_model()
    name = f"bench-{label}-v2-{rows}"
    owner, _ = User.objects.get_or_create(username=f"bench-owner-{label}")
    project = Project.objects.filter(name=name).first()
    if project and Task.objects.filter(project=project).count() == rows:
        return project, owner
    if project:
        project.delete()
    started = time.perf_counter()
    with transaction.atomic():
        project = Project.objects.create(name=name, owner=owner)
        Membership.objects.create(project=project, user=owner, role=Role.OWNER)
        users = []
        for n in range(USERS):
            user, _ = User.objects.get_or_create(username=f"bench-{label}-user{n}")
            Membership.objects.create(project=project, user=user, role=Role.MEMBER)
            users.append(user.pk)
        mine = {
            "project_id",
            "title",
            "description",
            "status",
            "priority",
            "assignee_id",
            "created_by_id",
            "due_at",
            "completed_at",
            "created_at",
            "updated_at",
            "id",
        }
        extra = [f for f in Task._meta.concrete_fields if f.column not in mine and not f.null]
        params = {
            "project": project.pk,
            "users": users,
            "owner": owner.pk,
            "rows": rows,
            "now": datetime.now(UTC).replace(microsecond=0),
        }
        for f in extra:
            params[f"x_{f.column}"] = f.get_db_prep_save(f.get_default(), connection)
        sql = GENERATE.format(
            users=USERS,
            extra_cols="".join(f", {f.column}" for f in extra),
            extra_vals="".join(f", %(x_{f.column})s" for f in extra),
        )
        with connection.cursor() as cur:
            cur.execute(sql, params)
    with connection.cursor() as cur:
        cur.execute("ANALYZE tasks_app_task")
    print(f"generated {rows:,} tasks in {time.perf_counter() - started:.1f}s")
    return project, owner


BASELINE_SUBQUERIES = """
WITH t AS (SELECT * FROM tasks_app_task WHERE project_id = %(p)s)
SELECT
 (SELECT json_build_object(
    'created', count(*), 'completed', count(*) FILTER (WHERE status = 'done'),
    'cancelled', count(*) FILTER (WHERE status = 'cancelled'),
    'open', count(*) FILTER (WHERE status IN ('todo', 'in_progress')),
    'overdue', count(*) FILTER (WHERE status IN ('todo', 'in_progress') AND due_at < %(now)s),
    'median', percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at)::float8)
              FILTER (WHERE status = 'done' AND completed_at IS NOT NULL),
    'p90', percentile_cont(0.9) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at)::float8)
           FILTER (WHERE status = 'done' AND completed_at IS NOT NULL)) FROM t),
 (SELECT json_agg(a) FROM (
    SELECT t.assignee_id, u.username, count(*) AS created, count(*) FILTER (WHERE status = 'done') AS completed,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE status IN ('todo', 'in_progress')) AS open,
           count(*) FILTER (WHERE status IN ('todo', 'in_progress') AND due_at < %(now)s) AS overdue
    FROM t LEFT JOIN auth_user u ON u.id = t.assignee_id GROUP BY t.assignee_id, u.username) a),
 (SELECT json_object_agg(d, n) FROM (
    SELECT (completed_at AT TIME ZONE 'UTC')::date AS d, count(*) AS n FROM t
    WHERE status = 'done' AND completed_at >= %(since)s GROUP BY 1) th)
"""

# The same statement without the CTE (PostgreSQL materializes a CTE referenced three times).
BASELINE_DIRECT = """
SELECT
 (SELECT json_build_object(
    'created', count(*), 'completed', count(*) FILTER (WHERE status = 'done'),
    'cancelled', count(*) FILTER (WHERE status = 'cancelled'),
    'open', count(*) FILTER (WHERE status IN ('todo', 'in_progress')),
    'overdue', count(*) FILTER (WHERE status IN ('todo', 'in_progress') AND due_at < %(now)s),
    'median', percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at)::float8)
              FILTER (WHERE status = 'done' AND completed_at IS NOT NULL),
    'p90', percentile_cont(0.9) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at)::float8)
           FILTER (WHERE status = 'done' AND completed_at IS NOT NULL)) FROM tasks_app_task WHERE project_id = %(p)s),
 (SELECT json_agg(a) FROM (
    SELECT t.assignee_id, u.username, count(*) AS created, count(*) FILTER (WHERE status = 'done') AS completed,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE status IN ('todo', 'in_progress')) AS open,
           count(*) FILTER (WHERE status IN ('todo', 'in_progress') AND due_at < %(now)s) AS overdue
    FROM tasks_app_task t LEFT JOIN auth_user u ON u.id = t.assignee_id
    WHERE t.project_id = %(p)s GROUP BY t.assignee_id, u.username) a),
 (SELECT json_object_agg(d, n) FROM (
    SELECT (completed_at AT TIME ZONE 'UTC')::date AS d, count(*) AS n FROM tasks_app_task
    WHERE project_id = %(p)s AND status = 'done' AND completed_at >= %(since)s GROUP BY 1) th)
"""

BASELINE_GROUPING_SETS = """
SELECT t.assignee_id, x.d, GROUPING(t.assignee_id) AS ga, GROUPING(x.d) AS gd,
       count(*), count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'cancelled'),
       count(*) FILTER (WHERE status IN ('todo', 'in_progress')),
       count(*) FILTER (WHERE status IN ('todo', 'in_progress') AND due_at < %(now)s),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at)::float8)
           FILTER (WHERE status = 'done' AND completed_at IS NOT NULL),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at)::float8)
           FILTER (WHERE status = 'done' AND completed_at IS NOT NULL),
       max(u.username)
FROM tasks_app_task t LEFT JOIN auth_user u ON u.id = t.assignee_id
CROSS JOIN LATERAL (SELECT CASE WHEN t.status = 'done' AND t.completed_at >= %(since)s
                                THEN (t.completed_at AT TIME ZONE 'UTC')::date END AS d) x
WHERE t.project_id = %(p)s
GROUP BY GROUPING SETS ((), (t.assignee_id), (x.d))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.utils import timezone

    from analytics import metrics

    if connection.vendor != "postgresql":
        raise SystemExit("bench/analytics.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    project, _ = ensure_project(args.rows)
    now = timezone.now()
    today = now.astimezone(UTC).date()
    since = datetime.combine(today - timedelta(days=29), dtime.min, tzinfo=UTC)
    params = {"p": project.pk, "now": now, "since": since}

    def ours():
        return metrics.project_metrics(project_id=project.pk, now=now)

    def raw(sql):
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    # Same numbers: compare totals, percentiles, per-assignee counts and throughput with the first baseline.
    data = ours()
    ((totals, assignees, throughput),) = raw(BASELINE_SUBQUERIES)
    assert {k: data[k] for k in ("created", "completed", "cancelled", "open", "overdue")} == {
        k: totals[k] for k in ("created", "completed", "cancelled", "open", "overdue")
    }, (data, totals)
    assert data["cycle_time_seconds"]["median"] == round(totals["median"], 1)
    assert data["cycle_time_seconds"]["p90"] == round(totals["p90"], 1)
    assert sorted(
        (a["assignee_id"] or 0, a["created"], a["completed"], a["overdue"]) for a in data["by_assignee"]
    ) == sorted((a["assignee_id"] or 0, a["created"], a["completed"], a["overdue"]) for a in assignees)
    assert {d["date"]: d["completed"] for d in data["throughput"]["per_day"] if d["completed"]} == (throughput or {})
    print(
        f"same numbers: created {data['created']:,}, completed {data['completed']:,}, overdue {data['overdue']:,}, "
        f"median {data['cycle_time_seconds']['median']} s, p90 {data['cycle_time_seconds']['p90']} s, "
        f"{len(data['by_assignee'])} assignee rows, throughput {data['throughput']['total']:,} in 30 days"
    )

    ((d_totals, d_assignees, d_throughput),) = raw(BASELINE_DIRECT)
    assert (d_totals, d_throughput) == (totals, throughput)
    by_id = lambda a: a["assignee_id"] or 0  # noqa: E731
    assert sorted(d_assignees, key=by_id) == sorted(assignees, key=by_id)
    runs = {
        "ours": ours,
        "subqueries_cte": lambda: raw(BASELINE_SUBQUERIES),
        "subqueries": lambda: raw(BASELINE_DIRECT),
        "grouping_sets": lambda: raw(BASELINE_GROUPING_SETS),
    }
    timings = {name: [] for name in runs}
    for fn in runs.values():  # warm the cache
        fn()
    for _ in range(args.repeat):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    for k, v in med.items():
        print(f"{k:>14}: median {v:,.0f} ms over {args.repeat} runs")
    baseline = min(v for k, v in med.items() if k != "ours")
    report(
        f"project analytics over {args.rows:,} tasks vs one hand-written SQL",
        ours=med["ours"],
        baseline=baseline,
        unit="ms",
        target="<= 1.2",
        higher_is_better=False,
    )


if __name__ == "__main__":
    main()
