"""/metrics after a real workload: HTTP, tasks, webhooks, email, exports, queues, outboxes, beat."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from core.beat import record_beat_tick
from ops.tests import workload

pytestmark = pytest.mark.worker


def scrape(token="ops-token"):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def value(samples, name, **labels):
    return sum(
        v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items())
    )


def test_metrics_after_a_workload(api, start_celery_worker, settings, tmp_path):
    settings.OPS_TOKEN = "ops-token"
    _, before = scrape()
    workload.run(
        api=api, start_celery_worker=start_celery_worker, settings=settings, tmp_path=tmp_path, failing_webhooks=2
    )
    record_beat_tick()
    text, after = scrape()
    (tmp_path / "scrape.txt").write_text(text)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("taskmgmt_http_requests_total", route="api/v1/tasks/", method="POST", status="201") == 6
    assert delta("taskmgmt_http_requests_total", route="api/v1/tasks/<pk>/", method="GET", status="404") == 1
    assert delta("taskmgmt_http_request_duration_seconds_count", route="api/v1/tasks/", method="POST") == 6
    assert delta("taskmgmt_celery_tasks_total", task="webhooks.deliver_webhook", state="success") >= 5
    assert delta("taskmgmt_celery_task_duration_seconds_count", task="analytics.export_tasks_async") == 1
    assert delta("taskmgmt_webhook_deliveries_total", outcome="delivered") == 5  # 7 events, the first 2 answered 500
    assert delta("taskmgmt_webhook_deliveries_total", outcome="retrying") == 2
    assert delta("taskmgmt_webhook_delivery_lag_seconds_count") == 5
    assert delta("taskmgmt_email_sends_total", outcome="sent") >= 1
    assert delta("taskmgmt_export_duration_seconds_count", outcome="succeeded") == 1
    for queue in settings.QUEUE_NAMES:
        assert ("taskmgmt_queue_depth", (("queue", queue),)) in after
    assert value(after, "taskmgmt_outbox_oldest_pending_age_seconds", outbox="webhooks.delivery") == 0
    assert 0 <= value(after, "taskmgmt_beat_last_tick_age_seconds") < 60
    assert value(after, "taskmgmt_ops_collector_up") == 1
    # No addresses or secrets in the exposition: routes are patterns, not paths with ids or emails.
    labels = {v for (_, ls) in after for _, v in ls}
    assert not [v for v in labels if "@" in v or "999999" in v], labels
