"""Run every benchmark and write docs/benchmarks.md: one row per ratio, with its target.

Usage: .venv/bin/python bench/run_all.py [--quick] [--only NAME ...]
Benchmarks that compare against PostgreSQL's COPY or need 1M rows run on PostgreSQL
(BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/taskmgmt_bench); if none answers
they are reported as skipped. Each benchmark measures its raw baseline in the same run.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/taskmgmt_bench"

# name, script args, quick args, needs PostgreSQL
BENCHES = [
    ("publish", ["--n", "3000"], ["--n", "1000"], False),
    ("api_tasks", ["--duration", "5", "--rounds", "5"], ["--duration", "3", "--rounds", "1"], False),
    ("notifications", ["--events", "1000"], ["--events", "300"], False),
    ("api_mixed", ["--duration", "10", "--clients", "4"], ["--quick"], False),
    ("webhooks", [], ["--subs", "1000", "--rounds", "1", "--slow-subs", "500", "--clients", "500"], False),
    ("recurring", ["--templates", "10000", "--rounds", "3"], ["--templates", "2000", "--rounds", "1"], True),
    ("analytics", ["--rows", "1000000"], ["--rows", "100000"], True),
    ("search", ["--tasks", "100000"], ["--tasks", "20000", "--repeat", "5"], True),
    (
        "exports",
        ["--rows", "100000", "--rss-rows", "100000,1000000", "--rss-rows-xlsx", "100000,300000"],
        ["--rows", "20000", "--rss-rows", "20000,100000", "--rss-formats", "csv"],
        True,
    ),
    ("curves", [], ["--quick"], True),
]


def postgres_url():
    url = os.environ.get("BENCH_DATABASE_URL") or PG_DEFAULT
    try:
        import psycopg

        psycopg.connect(
            url.replace("/taskmgmt_bench", "/postgres").replace("postgres://", "postgresql://"), connect_timeout=2
        ).close()
        return url
    except Exception:
        return None


def analyze(url):
    """Fresh planner statistics before each script: the bench database is shared, and the scripts before fill it
    (millions of tasks after analytics and curves); without them a list read 2.6 million rows by a seq scan."""
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute("ANALYZE")


def rows_from_log(text):
    rows, command = [], ""
    for line in text.splitlines():
        if line.startswith("=== "):
            command = line[4:]
        elif line.startswith("BENCH_RESULT "):
            rows.append({**json.loads(line.split(" ", 1)[1]), "command": command})
    return rows


def curves_from_log(text):
    return [json.loads(line.split(" ", 1)[1]) for line in text.splitlines() if line.startswith("BENCH_CURVE ")]


def curve_table(curves):
    """Time per item at each size, and its growth against the smallest size of the same job."""
    lines = [
        "| job | size | total | per item | per item vs x1 |",
        "|---|---|---|---|---|",
    ]
    first = {}
    for c in curves:
        base = first.setdefault(c["job"], c["per_item_ms"])
        growth = c["per_item_ms"] / base if base else float("nan")
        lines.append(
            f"| {c['job']} | {c['size']:,} | {c['seconds']:,.2f} s | {c['per_item_ms']:.4f} ms per {c['unit']} | "
            f"{growth:.2f} |"
        )
    return lines


def met_cell(met):
    """The table's "met" column: None is a row without a target (printed for context, e.g. the mixed API load)."""
    return "–" if met is None else "yes" if met else "**no**"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--from-log", help="rebuild the table from the output of an earlier run instead of running")
    args = parser.parse_args()
    pg = postgres_url()
    rows, log, curves = [], [], []
    if args.from_log:
        rows = rows_from_log(Path(args.from_log).read_text())
        curves = curves_from_log(Path(args.from_log).read_text())
    for name, full, quick, needs_pg in [] if args.from_log else BENCHES:
        if args.only and name not in args.only:
            continue
        argv = [sys.executable, str(ROOT / "bench" / f"{name}.py"), *(quick if args.quick else full)]
        env = dict(os.environ)
        env["BENCH_DATABASE_URL"] = pg or ""
        if needs_pg and not pg:
            rows.append({"name": name, "skipped": "PostgreSQL not reachable"})
            continue
        if not pg:
            env.pop("BENCH_DATABASE_URL")
        command = " ".join(["python", f"bench/{name}.py", *(quick if args.quick else full)])
        print(f"=== {command}", flush=True)
        if pg:
            try:
                analyze(pg)
            except Exception as exc:  # a database not created yet (the first script creates it)
                print(f"(ANALYZE skipped: {type(exc).__name__})", flush=True)
        started = datetime.datetime.now()
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        seconds = (datetime.datetime.now() - started).total_seconds()
        print(proc.stdout[-4000:], proc.stderr[-2000:] if proc.returncode else "", flush=True)
        results = [
            json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("BENCH_RESULT ")
        ]
        curves += curves_from_log(proc.stdout)
        if name == "curves" and not proc.returncode:
            log.append((name, seconds))
            continue
        if proc.returncode or not results:
            rows.append({"name": name, "skipped": f"failed (exit {proc.returncode})", "command": command})
        for result in results:
            rows.append({**result, "command": command, "seconds": seconds})
        log.append((name, seconds))

    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (bench/run_all.py{' --quick' if args.quick else ''}) on "
        f"{datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; database for the PostgreSQL rows: {'PostgreSQL' if pg else 'none'}.",
        "Each ratio compares our path with a raw baseline measured in the same run on the same machine.",
        "For throughput, ratio = ours / baseline (higher is better); for latency, ratio = ours / baseline (lower is "
        "better).",
        "",
        "| benchmark | ours | baseline | ratio | target | met | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['name']} | – | – | – | – | skipped: {row['skipped']} | {row.get('command', '')} |")
            continue
        if "baseline" in row:
            measured = f"{row['baseline']:,.2f} {row['unit']} | {row['ratio']:.2f}"
        else:  # an absolute bound (e.g. peak RSS), not a ratio
            measured = "– | –"
        lines.append(
            f"| {row['name']} | {row['ours']:,.2f} {row['unit']} | {measured} | {row['target']} | "
            f"{met_cell(row['met'])} | `{row['command']}` |"
        )
    if curves:
        lines += [
            "",
            "## Cost curves",
            "",
            "Each background job at three sizes (bench/curves.py; `--quick`: the first two), in-process on "
            "PostgreSQL. A per-item time that rises with the size is a super-linear path.",
            "",
            *curve_table(curves),
        ]
    if log:
        lines += ["", "Durations: " + ", ".join(f"{name} {s:.0f} s" for name, s in log)]
    lines += [
        "",
        "Why the unmet targets are not met, and what was done about them: "
        "[proof-suites.md#benchmarks](proof-suites.md#benchmarks).",
        "",
    ]
    text = with_kept_notes("\n".join(lines), Path(args.out))
    Path(args.out).write_text(text)
    print(text)


KEEP_MARKER = "<!-- written by hand: bench/run_all.py keeps everything from this line on -->"


def with_kept_notes(generated, out):
    """The generated text, followed by the hand-written part of the file it replaces (from KEEP_MARKER on)."""
    old = out.read_text() if out.exists() else ""
    at = old.find(KEEP_MARKER)
    return generated if at < 0 else generated.rstrip("\n") + "\n\n" + old[at:]


if __name__ == "__main__":
    main()
