"""Every query of the Grafana dashboard parses (promtool) and reads only metrics /metrics exposes."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from ops.tests.test_alert_rules import _promtool

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "taskmgmt-dashboard.json"
EXPOSED = {
    "taskmgmt_http_requests_total",
    "taskmgmt_http_request_duration_seconds_bucket",
    "taskmgmt_celery_tasks_total",
    "taskmgmt_celery_task_duration_seconds_bucket",
    "taskmgmt_webhook_deliveries_total",
    "taskmgmt_webhook_delivery_lag_seconds_bucket",
    "taskmgmt_email_sends_total",
    "taskmgmt_export_duration_seconds_bucket",
    "taskmgmt_queue_depth",
    "taskmgmt_outbox_pending",
    "taskmgmt_outbox_oldest_pending_age_seconds",
    "taskmgmt_beat_last_tick_age_seconds",
    "taskmgmt_beat_leader",
}


def test_dashboard_queries_parse_and_use_exposed_metrics(tmp_path):
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"taskmgmt_[a-z_]+", e)}
    assert used <= EXPOSED, used - EXPOSED
    promtool = _promtool()
    if not promtool:
        pytest.skip("promtool is not installed")
    rules = {"groups": [{"name": "dash", "rules": [{"record": f"dash:q{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dash.yml"
    path.write_text(json.dumps(rules))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
