"""Export speed and memory, each against a raw baseline measured in the same run (PostgreSQL).

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/tm_bench7 .venv/bin/python bench/exports.py [--rows 100000]
       [--rss-rows 100000,1000000] [--rss-rows-xlsx 100000,300000] [--rss-formats csv,xlsx]
- CSV: our export (analytics.services.export_run: visibility-scoped query, .iterator, csv module, formula
  escaping, ISO datetimes, progress writes, save to storage) vs `COPY (...) TO STDOUT` into a file, twice:
  COPY of the exact SELECT our export runs (same rows, same cells), and COPY of the raw columns (same
  rows, PostgreSQL's own text, no escaping or visibility join). Target: ours >= 0.6 of COPY of the same
  SELECT (0.5 against the raw columns). On PostgreSQL our CSV export is itself a COPY of that SELECT
  (ANALYTICS_EXPORT_CSV_COPY); the difference is the visibility count, progress writes and storing the file.
- XLSX: our export vs raw openpyxl write-only appending the same tuples (fetched beforehand, not timed).
  Target: >= 0.85 of raw openpyxl's speed.
- Peak RSS (ru_maxrss) of a subprocess running one export, at each --rss-rows size. Target <= 150 MB and flat.
Data is generated once per size with generate_series (bench/analytics.py's generator) and kept for reruns.
"""

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report, setup_django

HERE = Path(__file__).resolve().parent


def generator():
    spec = importlib.util.spec_from_file_location("bench_analytics_data", HERE / "analytics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ensure_project


def media_dir():
    from django.conf import settings

    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="bench-exports-media-")
    return settings.MEDIA_ROOT


def run_export(project, owner, fmt):
    """One export through the service, as the worker runs it. Returns (seconds, job)."""
    from django.utils import timezone

    from analytics.exports import DEFAULT_FIELDS
    from analytics.models import ExportJob
    from analytics.services import export_run

    job = ExportJob.objects.create(
        requester=owner,
        format=fmt,
        project=project,
        fields=DEFAULT_FIELDS,
        expires_at=timezone.now() + timezone.timedelta(hours=1),
    )
    started = time.perf_counter()
    result = export_run(job_id=job.pk)
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    assert result.get("status") == "succeeded", (result, job.error)
    return elapsed, job


# The rows as stored, as PostgreSQL prints them (no ISO formatting, no escaping, no visibility join).
RAW_SELECT = """SELECT t.id, t.project_id, t.title, t.status, t.priority, u.username, t.due_at, t.completed_at,
t.created_at FROM tasks_app_task t LEFT JOIN auth_user u ON u.id = t.assignee_id
WHERE t.project_id = {project} ORDER BY t.id"""


def our_select(project, owner):
    """The exact SELECT our CSV export runs (visibility join, ISO datetimes, formula escaping), bound."""
    import psycopg
    from django.db import connection

    from analytics.exports import DEFAULT_FIELDS, export_columns
    from analytics.models import ExportJob
    from analytics.services import _export_rows

    job = ExportJob(requester=owner, project=project, format="csv", fields=DEFAULT_FIELDS)
    columns = export_columns(DEFAULT_FIELDS)
    sql, params = _export_rows(job).annotate(**columns).values_list(*columns).query.sql_with_params()
    connection.ensure_connection()
    return psycopg.ClientCursor(connection.connection).mogrify(sql, params)


def copy_baseline(select, path):
    from django.db import connection

    connection.ensure_connection()
    started = time.perf_counter()
    with connection.connection.cursor() as cur, open(path, "wb") as fh:
        with cur.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            for block in copy:
                fh.write(block)
    return time.perf_counter() - started


def openpyxl_baseline(project, owner, path):
    """Raw openpyxl write-only on the very tuples our export writes (fetched beforehand, not timed)."""
    from openpyxl import Workbook

    from analytics.exports import DEFAULT_FIELDS, export_columns
    from analytics.models import ExportJob
    from analytics.services import _export_rows

    job = ExportJob(requester=owner, project=project, format="xlsx", fields=DEFAULT_FIELDS)
    columns = export_columns(DEFAULT_FIELDS)
    rows = list(_export_rows(job).annotate(**columns).values_list(*columns))
    started = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("tasks")
    sheet.append(DEFAULT_FIELDS)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return time.perf_counter() - started, len(rows)


def child(rows, fmt):
    """Subprocess body: one export; prints its peak RSS."""
    setup_django()
    media = media_dir()
    project, owner = generator()(rows, label="exports")
    elapsed, job = run_export(project, owner, fmt)
    job.file.delete(save=False)
    shutil.rmtree(media)
    print(
        json.dumps(
            {
                "rows": job.row_count,
                "seconds": round(elapsed, 2),
                "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "vmhwm_mb": vmhwm_mb(),
            }
        )
    )


def vmhwm_mb():
    """The kernel's peak RSS of this address space (reset by exec), as a cross-check of ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def child_idle(rows):
    setup_django()
    generator()(rows, label="exports")
    print(json.dumps({"maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def spawn(*args):
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, env=os.environ.copy()
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rss-rows", default="100000,1000000")
    parser.add_argument("--rss-formats", default="csv,xlsx")
    # XLSX writes about 6,000 rows/s here: 1,000,000 rows alone is over 3 minutes of `make bench`.
    parser.add_argument("--rss-rows-xlsx", help="the XLSX sizes, if not --rss-rows")
    parser.add_argument("--child", nargs=2, metavar=("ROWS", "FORMAT"))
    parser.add_argument("--child-idle", type=int)
    args = parser.parse_args()
    if args.child:
        return child(int(args.child[0]), args.child[1])
    if args.child_idle:
        return child_idle(args.child_idle)

    if "postgres" not in (os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""):
        raise SystemExit("bench/exports.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    # Peak RSS first, from this still-small process: Linux carries ru_maxrss over fork and exec, so a
    # child spawned later would inherit this process's peak. Each child creates its data if missing.
    idle = spawn("--child-idle", str(args.rows))["maxrss_mb"]
    print(f"peak RSS of a process that only sets up Django: {idle} MB")
    sizes = [int(s) for s in args.rss_rows.split(",") if s]
    for fmt in [f for f in args.rss_formats.split(",") if f]:
        peaks = []
        if fmt == "xlsx" and args.rss_rows_xlsx:
            sizes = [int(s) for s in args.rss_rows_xlsx.split(",") if s]
        for rows in sizes:
            result = spawn("--child", str(rows), fmt)
            peaks.append(result["maxrss_mb"])
            print(
                f"{fmt.upper():>4} export of {result['rows']:,} rows: {result['seconds']} s, peak RSS "
                f"{result['maxrss_mb']} MB (VmHWM {result['vmhwm_mb']} MB)"
            )
            print(
                "BENCH_RESULT "
                + json.dumps(
                    {
                        "name": f"{fmt} export peak RSS at {rows:,} rows",
                        "ours": result["maxrss_mb"],
                        "unit": "MB",
                        "target": "<= 150",
                        "met": result["maxrss_mb"] <= 150,
                    }
                )
            )
        if len(peaks) > 1:
            print(
                f"{fmt.upper()} peak RSS growth from {sizes[0]:,} to {sizes[-1]:,} rows: {peaks[-1] - peaks[0]:+.1f} MB"
            )

    setup_django()
    media = media_dir()
    ensure = generator()
    project, owner = ensure(args.rows, label="exports")
    tmp = Path(tempfile.mkdtemp(prefix="bench-exports-"))

    same = our_select(project, owner)
    raw = RAW_SELECT.format(project=int(project.pk))
    run_export(project, owner, "csv")  # warm up (connections, imports, page cache)
    copy_baseline(same, tmp / "copy.csv")
    ours_csv, copy_same, copy_raw = [], [], []
    for _ in range(3):  # interleaved, best of 3: the box is shared
        ours_csv.append(run_export(project, owner, "csv")[0])
        copy_same.append(copy_baseline(same, tmp / "copy.csv"))
        copy_raw.append(copy_baseline(raw, tmp / "copy.csv"))
    from django.conf import settings

    settings.ANALYTICS_EXPORT_CSV_COPY = True  # the opt-in COPY path (progress only at the end)
    ours_copy = min(run_export(project, owner, "csv")[0] for _ in range(3))
    settings.ANALYTICS_EXPORT_CSV_COPY = False
    ours_csv, copy_same, copy_raw = min(ours_csv), min(copy_same), min(copy_raw)
    report(
        f"CSV export of {args.rows:,} tasks with ANALYTICS_EXPORT_CSV_COPY (opt-in), vs COPY of the same SELECT",
        ours=args.rows / ours_copy,
        baseline=args.rows / copy_same,
        unit="rows/s",
        target=">= 0.6",
    )
    print(
        f"CSV  {args.rows:,} rows: ours {ours_csv:.2f} s ({args.rows / ours_csv:,.0f} rows/s); COPY of our exact "
        f"SELECT {copy_same:.2f} s; COPY of the raw columns {copy_raw:.2f} s"
    )
    report(
        f"CSV export of {args.rows:,} tasks, speed vs COPY of the same SELECT",
        ours=args.rows / ours_csv,
        baseline=args.rows / copy_same,
        unit="rows/s",
        target=">= 0.6",
    )
    report(
        f"CSV export of {args.rows:,} tasks, speed vs COPY of the raw columns",
        ours=args.rows / ours_csv,
        baseline=args.rows / copy_raw,
        unit="rows/s",
        target=">= 0.5",
    )

    ours_xlsx, raw_xlsx = [], []
    for _ in range(2):
        ours_xlsx.append(run_export(project, owner, "xlsx")[0])
        elapsed, n = openpyxl_baseline(project, owner, tmp / "raw.xlsx")
        raw_xlsx.append(elapsed)
    ours_xlsx, raw_xlsx = min(ours_xlsx), min(raw_xlsx)
    print(f"XLSX {n:,} rows: ours {ours_xlsx:.2f} s, raw openpyxl write-only {raw_xlsx:.2f} s")
    report(
        f"XLSX export of {args.rows:,} tasks, speed vs raw openpyxl write-only",
        ours=args.rows / ours_xlsx,
        baseline=n / raw_xlsx,
        unit="rows/s",
        target=">= 0.85",
    )

    shutil.rmtree(tmp)
    shutil.rmtree(media)


if __name__ == "__main__":
    main()
