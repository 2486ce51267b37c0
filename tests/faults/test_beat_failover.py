"""Several beats, one leader (core/beat.py): SIGKILL the leader during short schedules; the standby takes
over within a bounded time, with 0 duplicate sends and 0 missed sends outside the takeover window; the
killed beat, restarted, stays standby. On PostgreSQL also: a frozen leader loses its lock connection
(pg_terminate_backend), a standby takes over, and the old leader, resumed, stands down.

Timings are the shipped defaults (BEAT_STANDBY_POLL_SECONDS=5); only the schedules are short (2 s)."""

import collections
import itertools
import os
import re
import signal
import sys
import time
from datetime import datetime

import pytest
from django.conf import settings
from django.db import connection

from tests.faults.conftest import set_intervals
from tests.support import wait_until

pytestmark = pytest.mark.faults
EVERY = 2
SCHEDULES = ("Sweep Pending Side Effects", "Cleanup Expired Notifications", "Retry Failed Webhooks")
SENT = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] Scheduler: Sending due task (.+?) \(")
LEAD = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): WARNING/MainProcess\] beat \S+: leader")


def _ts(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _sends(stack, names):
    by_schedule = collections.defaultdict(list)
    for name in names:
        for line in stack.log(name).splitlines():
            m = SENT.match(line)
            if m:
                by_schedule[m.group(2)].append((_ts(m.group(1)), name))
    return {k: sorted(v) for k, v in by_schedule.items()}


def _lead_times(stack, name):
    return [_ts(m.group(1)) for line in stack.log(name).splitlines() if (m := LEAD.match(line))]


def _judge(sends, windows):
    """(duplicates, missed outside the takeover windows, missed inside them, total sends)."""
    dup = missed_out = missed_in = total = 0
    for name in SCHEDULES:
        times = [t for t, _ in sends.get(name, [])]
        total += len(times)
        for a, b in itertools.pairwise(times):
            gap = b - a
            if gap < EVERY / 2:
                dup += 1
            lost = round(gap / EVERY) - 1
            if lost > 0:
                if any(a <= w1 and b >= w0 for w0, w1 in windows):
                    missed_in += lost
                else:
                    missed_out += lost
    return dup, missed_out, missed_in, total


def _duplicates(sends, marks):
    """Each pair of sends of one schedule closer than EVERY / 2, with times relative to the test's marks."""

    def at(t):
        return ", ".join(f"{label}{t - m:+.3f}s" for label, m in marks.items())

    return [
        f"{name}: {who_a} at {at(a)} then {who_b} at {at(b)}"
        for name in SCHEDULES
        for (a, who_a), (b, who_b) in itertools.pairwise(sends.get(name, []))
        if b - a < EVERY / 2
    ]


def _beat(stack, name):
    stack._spawn(name, [sys.executable, "manage.py", "celery_beat", "--loglevel", "INFO"])


def _leader(stack, names):
    leading = [n for n in names if _lead_times(stack, n)]
    return leading[0] if len(leading) == 1 else None


def test_standby_takes_over_after_sigkill_without_duplicates(local_stack, redis_clean):
    set_intervals(dict.fromkeys(SCHEDULES, EVERY))
    _beat(local_stack, "beat1")
    wait_until(lambda: _lead_times(local_stack, "beat1"), "beat1 to lead", timeout=30, step=0.2)
    _beat(local_stack, "beat2")
    from core.beat import beat_instances

    wait_until(lambda: len(beat_instances()[0]) == 2, "beat2 to report as standby", timeout=30, step=0.2)
    time.sleep(6)
    assert not _lead_times(local_stack, "beat2"), "two leaders at once"

    killed_at = time.time()
    local_stack.kill("beat1", signal.SIGKILL)
    wait_until(lambda: _lead_times(local_stack, "beat2"), "beat2 to take over", timeout=30, step=0.1)
    took_over = _lead_times(local_stack, "beat2")[0]
    windows = [(killed_at, took_over + EVERY)]
    figures = [f"takeover after SIGKILL {took_over - killed_at:.1f}s"]
    time.sleep(8)

    names = ["beat1", "beat2", "beat3"]
    # beat3 (the killed one, back) starts as a standby while beat2 holds the lock.
    _beat(local_stack, "beat3")
    wait_until(lambda: len(beat_instances()[0]) >= 2, "beat3 to report", timeout=30, step=0.2)
    time.sleep(3)
    assert not _lead_times(local_stack, "beat3"), "a beat that comes back must not lead while another does"
    if connection.vendor == "postgresql":
        # The leader freezes (SIGSTOP) and its lock connection is cut on the server side: beat3 takes
        # over; when the old leader resumes, its first tick finds the lock gone and it stands down.
        os.killpg(local_stack.procs["beat2"][0].pid, signal.SIGSTOP)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() "
                "AND a.application_name = 'taskmgmt-beat-leader'"
            )
            assert cur.fetchall() == [(True,)]
        cut_at = time.time()
        wait_until(lambda: _lead_times(local_stack, "beat3"), "beat3 to take over", timeout=30, step=0.1)
        took_over = _lead_times(local_stack, "beat3")[0]
        time.sleep(3)
        os.killpg(local_stack.procs["beat2"][0].pid, signal.SIGCONT)
        wait_until(lambda: "standing down" in local_stack.log("beat2"), "beat2 to stand down", timeout=30, step=0.2)
        windows.append((cut_at, took_over + EVERY))
        figures.append(f"takeover after the leader's connection was cut {took_over - cut_at:.1f}s")
        time.sleep(8)
        assert len(_lead_times(local_stack, "beat2")) == 1, "the old leader must not lead again"

    for name in names[1:]:
        local_stack.kill(name, signal.SIGTERM)
    sends = _sends(local_stack, names)
    dup, missed_out, missed_in, total = _judge(sends, windows)
    assert set(sends) >= set(SCHEDULES), sends.keys()
    # After the kill, the old leader sent nothing.
    assert all(t <= killed_at for t, who in sum(sends.values(), []) if who == "beat1")
    marks = {"kill": killed_at, **({"cut": cut_at} if connection.vendor == "postgresql" else {})}
    assert dup == 0, _duplicates(sends, marks)
    assert missed_out == 0, sends
    print(
        f"\nFAULT beat-failover ({connection.vendor}, standby poll {settings.BEAT_STANDBY_POLL_SECONDS:g}s, schedules every {EVERY}s): "
        + "; ".join(figures)
        + f"; sends {total}, duplicates 0/{total}, missed outside takeover 0, missed inside takeover {missed_in}"
    )
