"""End-to-end flows through a running worker (make run, or a worker on all queues).

Usage: python scripts/test_async_integration.py [--timeout SECONDS] [--keep]
Each flow creates its own data (users and projects prefixed 'itest-'), checks the outcome that the
worker produced, and removes the data unless --keep is given. Exits non-zero if any flow fails.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskmgmt.settings.local")

import django  # noqa: E402

django.setup()

from django_celery_results.models import TaskResult  # noqa: E402

from taskmgmt.celery import app  # noqa: E402

FLOWS = []


def flow(fn):
    FLOWS.append(fn)
    return fn


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@flow
def ping_and_result_storage(timeout):
    result = app.send_task("core.ping")
    assert result.get(timeout=timeout) == "pong"
    row = wait_for(lambda: TaskResult.objects.filter(task_id=result.id).first(), timeout, "the TaskResult row")
    assert row.status == "SUCCESS", row.status
    assert row.task_name == "core.ping", row.task_name
    return f"TaskResult {row.task_id[:8]} stored with status {row.status}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the data the flows created")
    args = parser.parse_args()
    os.environ["ITEST_KEEP"] = "1" if args.keep else ""
    failed = 0
    for fn in FLOWS:
        started = time.monotonic()
        try:
            detail = fn(args.timeout)
            print(f"[PASS] {fn.__name__:<32} {time.monotonic() - started:5.1f}s  {detail}")
        except Exception as exc:
            failed += 1
            print(f"[FAIL] {fn.__name__:<32} {time.monotonic() - started:5.1f}s  {type(exc).__name__}: {exc}")
    print(f"\n{len(FLOWS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
