"""SIGTERM a busy prefork worker (what systemd and Kubernetes send to the main process): warm shutdown
finishes the running tasks, hands the prefetched ones back to the broker, and exits; a new worker then
runs the rest. Nothing is lost."""

import os
import re
import signal
import sys
import time

import pytest

from core.enqueue import publish_now_rollback_unsafe
from tests.support import wait_until
from tests.testapp.models import Echo

pytestmark = pytest.mark.faults
N = 12


def test_sigterm_on_a_busy_worker_loses_nothing(local_stack, redis_clean):
    echos = [Echo.objects.create() for _ in range(N)]
    for echo in echos:
        assert publish_now_rollback_unsafe("core.testapp_slow_echo", args=[echo.pk, 1.5], queue="default")

    def done():
        return Echo.objects.filter(pk__in=[e.pk for e in echos], state=Echo.DONE).count()

    argv = [sys.executable, "manage.py", "celery_worker", "-Q", "default", "-c", "2", "-P", "prefork", "-l", "INFO"]
    proc = local_stack._spawn("busy", argv)
    wait_until(lambda: done() >= 2, "the worker to be busy", timeout=60, step=0.1)
    time.sleep(0.7)  # the next two tasks are now half-way through their 1.5 s
    at_term = done()
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)  # the main process only, as systemd (KillMode=mixed) and Kubernetes do
    code = proc.wait(timeout=60)
    stop_seconds = time.monotonic() - started
    at_exit = done()
    local_stack.procs.pop("busy")[1].close()
    assert code == 0, local_stack.log("busy")[-2000:]
    log = local_stack.log("busy")
    assert "Warm shutdown" in log
    restored = int(re.search(r"Restoring (\d+) unacknowledged", log).group(1))  # prefetched, handed back
    assert restored >= 1
    assert redis_clean.llen("default") == N - at_exit  # every task not done is back in the queue
    assert at_exit < N, "the worker should not have drained the queue before stopping"
    assert at_exit >= at_term + 2, "the two tasks running at SIGTERM finish before the worker exits"

    local_stack.worker("after", queues="default", concurrency=2, pool="prefork")
    wait_until(lambda: done() == N, f"all {N} tasks after the restart", timeout=90, step=0.2)
    assert set(Echo.objects.filter(pk__in=[e.pk for e in echos]).values_list("times_processed", flat=True)) == {1}
    print(
        f"\nFAULT graceful-shutdown: {N} tasks of 1.5 s, SIGTERM with {at_term} done; the worker finished its running "
        f"tasks ({at_exit} done), handed {restored} prefetched back and exited in {stop_seconds:.1f}s; after a restart {N}/{N} done, 0 lost"
    )
