"""The task list with `search` vs the same list without it, on 100k tasks (PostgreSQL full-text search).

Usage: BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/search.py [--tasks 100000] [--repeat 15]
In-process (Django test client, token auth), one page of 50 rows, median of --repeat requests after a
warm-up. Baseline: GET /api/v1/tasks/?page_size=50 (same user, same 100k visible tasks, with its COUNT).
Ours: the same with ?search= for a rare word, a common word and a 3-letter prefix (as-you-type).
Text is drawn from a 3,000-word vocabulary (log-uniform ranks, so a few words are everywhere and most
are rare), one comment per 5 tasks; seeded in SQL. Target: each
search request/s / list request/s >= 0.5 ("the same order of time").
"""

import argparse
import random
import statistics
import sys
import time

from _common import report, setup_django

WORDS = 3000


def vocabulary():
    rng = random.Random(7)
    letters = "abcdefghijklmnoprstuvw"
    words = set()
    while len(words) < WORDS:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    return sorted(words)


SEED_SQL = """
INSERT INTO tasks_app_task (project_id, title, description, status, priority, created_by_id, version,
                            edited_fields, position, created_at, updated_at)
SELECT %(project)s,
       (SELECT string_agg(w[floor(exp(random() * ln(%(n_words)s)))::int + (g * 0) + (k * 0)], ' ')
          FROM generate_series(1, 5) AS k),
       (SELECT string_agg(w[floor(exp(random() * ln(%(n_words)s)))::int + (g * 0) + (k * 0)], ' ')
          FROM generate_series(1, 25) AS k),
       'todo', 1 + g %% 4, %(user)s, 1, '[]'::jsonb, lpad(to_hex(g), 8, '0'), now(), now()
  FROM generate_series(1, %(n)s) AS g, (SELECT %(words)s::text[] AS w) AS v
"""
COMMENT_SQL = """
INSERT INTO tasks_app_comment (task_id, author_id, body, created_at, updated_at)
SELECT t.id, %(user)s,
       (SELECT string_agg(w[floor(exp(random() * ln(%(n_words)s)))::int + (t.id * 0) + (k * 0)], ' ')
          FROM generate_series(1, 15) AS k),
       now(), now()
  FROM tasks_app_task t, (SELECT %(words)s::text[] AS w) AS v
 WHERE t.project_id = %(project)s AND t.id %% 5 = 0
"""


def seed(n):
    """100k tasks and 20k comments generated in SQL (a Python loop takes many minutes on a busy box)."""
    from django.db import connection, transaction

    from tasks_app import conf
    from tasks_app.models import Membership, Project, Task
    from tasks_app.tests.factories import UserFactory

    user = UserFactory(username="bench-search")
    project = Project.objects.filter(name="bench-search").first()
    words = vocabulary()
    if project is not None and Task.objects.filter(project=project).count() == n:
        return user, words
    if project is not None:
        project.delete()
    project = Project.objects.create(name="bench-search", owner=user)
    Membership.objects.create(project=project, user=user, role="owner")
    params = {"project": project.pk, "user": user.pk, "n": n, "words": words, "n_words": len(words)}
    started = time.perf_counter()
    config = conf.TASK_SEARCH_LANGUAGE
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SEED_SQL, params)
        cursor.execute(COMMENT_SQL, params)
        # The same document search_reindex() builds, for the whole project in one statement. The comments are
        # read per task through their task_id index: a join with every task's aggregated comments planned badly
        # once the bench database held other benches' rows (1,000,000 tasks from bench/analytics.py: over 18 min).
        cursor.execute(
            """
            UPDATE tasks_app_task t SET search_vector =
                setweight(to_tsvector(%s::regconfig, t.title), 'A')
                || setweight(to_tsvector(%s::regconfig, t.description), 'B')
                || setweight(to_tsvector(%s::regconfig, coalesce(
                    (SELECT string_agg(c.body, ' ') FROM tasks_app_comment c WHERE c.task_id = t.id), '')), 'C')
             WHERE t.project_id = %s
            """,
            [config, config, config, project.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_app_task")
        cursor.execute("ANALYZE tasks_app_comment")
    print(f"seeded {n:,} tasks in {time.perf_counter() - started:.0f} s")
    return user, words


def timed(client, url, repeat):
    client.get(url)  # warm-up
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:300]
    return statistics.median(samples), response.json()["count"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from rest_framework.test import APIClient

    if connection.vendor != "postgresql":
        print("bench/search.py needs PostgreSQL (BENCH_DATABASE_URL); SQLite's fallback is a plain substring scan.")
        return 1
    user, words = seed(args.tasks)
    client = APIClient()
    client.force_authenticate(user)
    base, total = timed(client, "/api/v1/tasks/?page_size=50", args.repeat)
    print(f"list without search: {base * 1000:.1f} ms median ({total:,} tasks)")
    cases = {"rare word": words[2500], "common word": words[3], "prefix (3 letters)": words[40][:3]}
    for name, term in cases.items():
        median, matches = timed(client, f"/api/v1/tasks/?page_size=50&search={term}", args.repeat)
        print(f"search {name} {term!r}: {median * 1000:.1f} ms median, {matches:,} matches")
        report(
            f"GET /api/v1/tasks/?search= ({name}) vs the list without search, {args.tasks:,} tasks",
            ours=1 / median,
            baseline=1 / base,
            unit="req/s",
            target=">= 0.5",
        )


if __name__ == "__main__":
    sys.exit(main())
