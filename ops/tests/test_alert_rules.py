"""docs/prometheus/alerts.yml, tested with promtool against series built from two real scrapes of
/metrics: after a healthy workload (A) and after a faulty one (B: failing webhook receiver, failing
tasks, a lost email message, a backlog with no worker, a silent beat with no leader).

Series at 1-minute steps: minutes 0-29 in state A, 30-59 in state B. Gauges hold the scraped value;
counters grow each minute by what one workload added (A's increments, then B's), so rates are the
measured ones per minute. Every rule must be silent at 25m and fire at 59m."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from core import redis as core_redis
from core.beat import BEAT_INSTANCES_KEY, BEAT_LEADER_KEY, _record_role, record_beat_tick
from ops.tests import workload
from ops.tests.test_metrics_scrape import scrape
from tests.support import debian

pytestmark = pytest.mark.worker
RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus" / "alerts.yml"
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def _promtool():
    return debian.ensure("prometheus", binary="promtool")[0]


def _series_name(name, labels):
    inner = ",".join(f'{k}="{v}"'.replace("\\", "\\\\") for k, v in labels)
    return f"{name}{{{inner}}}" if inner else name


def _values(name, a0, a, b):
    """a0, a, b: the sample in the zero, healthy and faulty scrapes (None: absent from that scrape)."""
    if name.endswith(COUNTER_SUFFIXES):
        a0, a, b = a0 or 0.0, a or 0.0, b or 0.0
        step_a, step_b = a - a0, b - a
        vals = [i * step_a for i in range(30)] + [30 * step_a + (i - 29) * step_b for i in range(30, 60)]
    else:
        vals = [a] * 30 + [b] * 30
    return " ".join("_" if v is None else "+Inf" if v == float("inf") else repr(float(v)) for v in vals)


def test_alert_rules_fire_on_the_faulty_workload_only(api, start_celery_worker, settings, tmp_path):
    promtool = _promtool()
    if not promtool:
        pytest.skip("promtool (Debian package prometheus) is not installed and cannot be installed here")
    settings.OPS_TOKEN = "ops-token"
    _, zero = scrape()
    workload.run(api=api, start_celery_worker=start_celery_worker, settings=settings, tmp_path=tmp_path, prefix="a")
    record_beat_tick()
    _record_role("leader", time.time())
    _, healthy = scrape()

    workload.run(
        api=api,
        start_celery_worker=start_celery_worker,
        settings=settings,
        tmp_path=tmp_path,
        prefix="b",
        failing_webhooks=7,
        failing_tasks=5,
    )
    workload.backdate_pending_email(minutes=20)
    from taskmgmt.celery import app

    for _ in range(501):  # no worker runs now: a backlog
        app.send_task("core.ping", queue="default")
    record_beat_tick(now=time.time() - 600)
    core_redis.client().delete(BEAT_LEADER_KEY, BEAT_INSTANCES_KEY)
    _, faulty = scrape()

    keys = {k for k in healthy.keys() | faulty.keys() if k[0].startswith("taskmgmt_")}
    series = [
        {
            "series": _series_name(name, labels),
            "values": _values(name, zero.get((name, labels)), healthy.get((name, labels)), faulty.get((name, labels))),
        }
        for name, labels in sorted(keys)
    ]
    runbook = {"runbook": "docs/operations.md#alerts"}
    expected = {
        "TaskmgmtQueueBacklog": (
            {"severity": "warning", "queue": "default"},
            {"summary": "Celery queue default has had over 500 messages waiting for 10 minutes", **runbook},
        ),
        "TaskmgmtOutboxStale": (
            {"severity": "warning", "outbox": "notifications.email"},
            {"summary": "Outbox notifications.email: a side effect has waited over 15 minutes", **runbook},
        ),
        "TaskmgmtBeatSilent": (
            {"severity": "critical"},
            {"summary": "No beat has ticked for 2 minutes: schedules (reminders, sweeps, retries) are not running"},
        ),
        "TaskmgmtNoBeatLeader": ({"severity": "critical"}, {"summary": "No beat holds the leader lock"}),
        "TaskmgmtWebhookFailureRate": (
            {"severity": "warning"},
            {"summary": "Over 20% of webhook delivery attempts fail"},
        ),
        "TaskmgmtTaskFailures": (
            {"severity": "warning", "task": "core.testapp_fail"},
            {"summary": "Task core.testapp_fail keeps failing (over 3 a minute)"},
        ),
    }
    tests = [{"eval_time": "25m", "alertname": name, "exp_alerts": []} for name in expected] + [
        {"eval_time": "59m", "alertname": name, "exp_alerts": [{"exp_labels": labels, "exp_annotations": notes}]}
        for name, (labels, notes) in expected.items()
    ]
    spec = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}],
    }
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(json.dumps(spec, indent=1))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    print(f"\nALERTS promtool test rules: {len(series)} series from 3 scrapes, {len(tests)} checks:\n{result.stdout}")
