"""gunicorn settings for taskmgmt: `gunicorn -c taskmgmt/gunicorn.conf.py taskmgmt.wsgi`.

Prometheus multiprocess mode: every gunicorn worker writes its metrics to files in
PROMETHEUS_MULTIPROC_DIR and /metrics sums them. The directory must be empty at start (stale files
from a previous run would be added in), so it is emptied here, or a fresh one is made when unset.
"""

import os
import tempfile
from pathlib import Path

_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _dir:
    Path(_dir).mkdir(parents=True, exist_ok=True)
    for stale in Path(_dir).glob("*.db"):
        stale.unlink()
else:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="taskmgmt-web-metrics-")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Requests finish within this on SIGTERM (keep it below the orchestrator's stop timeout).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
