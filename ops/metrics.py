"""The Prometheus metrics, declared once. Import this module only after PROMETHEUS_MULTIPROC_DIR is
final for the process (gunicorn.conf.py sets it before the workers import the app; `manage.py
celery_worker` sets it before the first task runs): prometheus_client picks its storage on import.

Event metrics (counters, histograms) are recorded where the event happens: HTTP in ops.middleware,
tasks / webhooks / email / exports from Celery signals (ops.signals). State metrics (queue depth,
outbox age, beat) are read at scrape time by ops.collectors, from the web's /metrics only.
"""

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()  # no *_created series: half the exposition, and nothing in our rules reads them

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)

http_requests = Counter(
    "taskmgmt_http_requests", "HTTP requests by route, method and status.", ["route", "method", "status"]
)
http_latency = Histogram(
    "taskmgmt_http_request_duration_seconds", "HTTP request latency.", ["route", "method"], buckets=LATENCY_BUCKETS
)
tasks = Counter("taskmgmt_celery_tasks", "Celery task runs by task name and final state.", ["task", "state"])
task_runtime = Histogram(
    "taskmgmt_celery_task_duration_seconds", "Celery task runtime.", ["task"], buckets=TASK_BUCKETS
)
webhook_deliveries = Counter(
    "taskmgmt_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered, retrying, failed, cancelled).",
    ["outcome"],
)
webhook_lag = Histogram(
    "taskmgmt_webhook_delivery_lag_seconds", "From the event (delivery row written) to a 2xx.", buckets=LAG_BUCKETS
)
email_sends = Counter(
    "taskmgmt_email_sends", "Email deliveries by outcome (sent, skipped, retry, error...).", ["outcome"]
)
export_duration = Histogram(
    "taskmgmt_export_duration_seconds", "Export job runtime by outcome.", ["outcome"], buckets=TASK_BUCKETS
)


def process_registry():
    """This process's event metrics; in multiprocess mode, every process's that writes to the directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render(*registries):
    return b"".join(generate_latest(r) for r in registries)
