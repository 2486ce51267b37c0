"""Shared bits for benchmarks: Django setup on a throwaway database, and one result format.

Every benchmark measures our path and a raw baseline in the same run and prints, besides its own
human-readable lines, one machine-readable line per ratio:

    BENCH_RESULT {"name": ..., "ours": ..., "baseline": ..., "unit": ..., "ratio": ..., "target": ">= 0.5", "met": true}

`make bench` (bench/run_all.py) collects those lines into docs/benchmarks.md.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django(*, settings="taskmgmt.settings.test"):
    """Configure Django on a dedicated bench database (BENCH_DATABASE_URL, else DATABASE_URL, else SQLite in var/)."""
    # bench/webhooks.py and friends would shadow the Django apps of the same name; Celery's Django
    # fixup also puts the working directory first on sys.path, so work from the repository root.
    os.chdir(ROOT)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        os.environ["DATABASE_URL"] = url
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}"
    os.environ.setdefault("TEST_REDIS_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    import django

    django.setup()
    from django.core.management import call_command

    _ensure_database()
    call_command("migrate", verbosity=0, interactive=False)


def _ensure_database():
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    import psycopg

    name = connection.settings_dict["NAME"]
    params = {
        k: v
        for k, v in {
            "host": connection.settings_dict["HOST"] or "127.0.0.1",
            "port": connection.settings_dict["PORT"] or 5432,
            "user": connection.settings_dict["USER"],
            "password": connection.settings_dict["PASSWORD"],
        }.items()
        if v
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def report(name, *, ours, baseline, unit, target, higher_is_better=True):
    """Print one ratio. For throughput (higher is better) ratio = ours / baseline; for latency, ours / baseline too.

    target=None: a ratio the issue sets no target for; printed and recorded with target "-" and met None.
    """
    ratio = ours / baseline if baseline else float("inf")
    if target is None:
        target, met, verdict = "-", None, "no target"
    else:
        op, bound = target.split()
        bound = float(bound)
        met = ratio >= bound if op == ">=" else ratio <= bound
        verdict = "MET" if met else "NOT MET"
    print(
        f"{name}: ours {ours:,.2f} {unit}, baseline {baseline:,.2f} {unit}, ratio {ratio:.2f} "
        f"(target {target}) {verdict}"
    )
    print(
        "BENCH_RESULT "
        + json.dumps(
            {
                "name": name,
                "ours": round(ours, 3),
                "baseline": round(baseline, 3),
                "unit": unit,
                "ratio": round(ratio, 3),
                "target": target,
                "met": met,
                "higher_is_better": higher_is_better,
            }
        ),
        flush=True,
    )
    return ratio
