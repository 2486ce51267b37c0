"""schemathesis against a LIVE server: gunicorn (2 workers) and a real Celery worker on the test's database and
Redis, every check (`--checks all`), every phase including the stateful one, at least FUZZ_LIVE_CASES cases.

The run is the schemathesis CLI, as a consumer would run it, authenticated with a token of the populated world's
owner. Verdict: 0 server errors (counted in gunicorn's access log, not only what schemathesis reports), and no
failure of any check except those named in EXCLUDED (their reasons are in docs/proof-suites.md).
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.security.conftest import build_world
from tests.security.live import ROOT, LiveStack

# FUZZ_LIVE_EXAMPLES: examples per operation and phase; the figure in docs/proof-suites.md ran the default.
EXAMPLES = int(os.environ.get("FUZZ_LIVE_EXAMPLES", "6"))
MIN_CASES = int(os.environ.get("FUZZ_LIVE_CASES", "5000"))
SEED = int(os.environ.get("FUZZ_LIVE_SEED", "13"))
# positive_data_acceptance ("Schema-valid request rejected") runs and is held to refusals a schema cannot state:
# a referenced object that does not exist or is not visible, a recurrence rule the RRULE grammar refuses, a URL
# the SSRF guard refuses once resolved, wrong credentials. Any other refusal of a schema-valid request fails.
# Refusals that depend on the server's state no schema can describe: an Idempotency-Key reused for another request
# or still in flight, an If-Match ETag that is not the object's current one.
UNSTATABLE = {
    "does_not_exist",
    "invalid_recurrence",
    "unsafe_url",
    "invalid_credentials",
    "idempotency_key_reused",
    "idempotency_key_in_use",
    "precondition_failed",
    # the cursor the server issued; a reminder time in the past now, on a task with no due date, for a non-member
    "invalid_cursor",
    "in_the_past",
    "no_due_date",
    "not_a_member",
    # a reminder change that nulls the time of its current kind without giving the other (depends on the stored kind)
    "remind_at_or_offset",
    # a board move's neighbour in another status column now, or the moved task itself (its id is in the path)
    "not_in_column",
    "own_neighbour",
}
POSITIVE = "Schema-valid request rejected"
# Checks still open, by name (each with its reason in docs/proof-suites.md): none since issue 15's endpoints were
# made to hold the contract (2026-11-28).
KNOWN_OPEN = set()
# The unsubscribe link is a page for people (RFC 8058 confirmation), not part of the JSON contract.
EXCLUDED_PATHS = "^/api/v1/notifications/unsubscribe/"


def refusal_codes(stdout):
    """Error codes in the responses schemathesis printed for its "Schema-valid request rejected" failures."""
    codes, blocks = [], stdout.split("- ST")
    for block in blocks[1:]:
        if block.split("\n", 1)[0].strip().endswith(POSITIVE):
            found = re.findall(r'"code": ?"(\w+)"', block.split("\n- ")[0])
            codes.append(found or ["<no error body shown>"])
    return codes


@pytest.fixture
def live_world(subprocess_env, tmp_path):
    world = build_world("live")
    stack = LiveStack(subprocess_env, tmp_path)
    stack.web(workers=2, threads=4)
    stack.worker()
    yield world, stack
    stack.stop()


def test_live_server_survives_every_check(live_world, tmp_path):
    world, stack = live_world
    report = tmp_path / "report.json"
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(ROOT / "tests" / "security" / "schemathesis.toml"),
            "run",
            f"{stack.url}/api/schema/",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-database",
            "none",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--no-shrink",
            "--continue-on-failure",
            "--no-color",
            "--output-truncate",
            "false",
            "--exclude-path-regex",
            EXCLUDED_PATHS,
            "-H",
            f"Authorization: Token {world.token}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    elapsed = time.monotonic() - started
    assert report.exists(), run.stdout[-4000:] + run.stderr[-4000:]
    doc = json.loads(report.read_text())
    statuses = stack.statuses()
    requests = sum(statuses.values())
    by_check = {}
    for failure in doc["failures"]:
        by_check[failure["title"]] = by_check.get(failure["title"], 0) + failure["count"]
    summary = (
        f"live fuzz: {doc['test_cases']['generated']} cases, {requests} requests, "
        f"5xx {sum(n for s, n in statuses.items() if s >= 500)}/{requests}, "
        f"statuses {dict(sorted(statuses.items()))}, failures by check {by_check or 'none'}, "
        f"phases {doc['phases']}, {elapsed:.0f}s"
    )
    print("\n" + summary)
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "live-fuzz-last.txt").write_text(summary + "\n\n" + run.stdout)
    assert not stack.server_errors(), stack.server_errors()[:20]
    assert doc["test_cases"]["generated"] >= MIN_CASES, summary
    assert doc["phases"].get("stateful", {}).get("status") in ("success", "failure"), doc["phases"]
    others = {title: n for title, n in by_check.items() if title not in (POSITIVE, *KNOWN_OPEN)}
    assert not others, summary + "\n" + run.stdout[-15000:]
    refused = refusal_codes(run.stdout)
    assert bool(refused) == bool(by_check.get(POSITIVE)), (refused, by_check)
    # A schema-valid request may be refused only for a reason no schema can state.
    statable = [codes for codes in refused if not set(codes) <= UNSTATABLE]
    assert not statable, f"schema-valid requests refused for reasons the schema could state: {statable}"
