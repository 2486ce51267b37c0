"""One trace from the API request to the outgoing webhook, through a real worker (in-memory exporter)."""

import logging

import pytest
from celery import signals
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ops import tracing
from tests.support import Receiver, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure(exporter, simple=True)
    yield exporter
    tracing.unconfigure()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_request_publish_task_and_webhook_share_one_trace(spans, api, start_celery_worker):
    from tasks_app.tests.factories import ProjectFactory, UserFactory
    from webhooks import services
    from webhooks.models import WebhookDelivery

    published = []

    def capture(headers=None, body=None, **kwargs):
        published.append((dict(headers or {}), body))

    signals.before_task_publish.connect(capture, weak=False, dispatch_uid="test.capture")
    receiver = Receiver()
    logs = _Records()
    task_logger = logging.getLogger("celery.app.trace")  # Celery's "Task ... succeeded" line
    task_logger.addHandler(logs)
    level, task_logger.level = task_logger.level, logging.INFO  # whatever an earlier worker's setup left
    try:
        owner = UserFactory(username="trace-owner")
        project = ProjectFactory(owner=owner)
        services.subscription_create(actor=owner, project=project, url=receiver.url(), events=["task.created"])
        with start_celery_worker(queues=["webhooks"]):
            r = api(owner).post("/api/v1/tasks/", {"project": project.pk, "title": "traced"}, format="json")
            assert r.status_code == 201
            wait_until(lambda: WebhookDelivery.objects.filter(state="delivered").exists(), "the delivery")
            wait_until(lambda: any(s.kind == SpanKind.CLIENT for s in spans.get_finished_spans()), "the http span")
    finally:
        signals.before_task_publish.disconnect(dispatch_uid="test.capture")
        task_logger.removeHandler(logs)
        task_logger.setLevel(level)
        receiver.close()

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    server = next(s for s in finished if s.kind == SpanKind.SERVER and s.attributes.get("http.method", "POST"))
    producer = next(s for s in finished if s.kind == SpanKind.PRODUCER and s.name.endswith("webhooks.deliver_webhook"))
    consumer = next(s for s in finished if s.kind == SpanKind.CONSUMER and s.name.endswith("webhooks.deliver_webhook"))
    client = next(s for s in finished if s.kind == SpanKind.CLIENT)

    def ancestors(span):
        chain = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            chain.append(span)
        return chain

    trace_id = server.context.trace_id
    assert {s.context.trace_id for s in (producer, consumer, client)} == {trace_id}
    assert producer.parent.span_id == server.context.span_id  # published on commit, inside the request
    assert consumer.parent.span_id == producer.context.span_id  # carried to the worker by the message
    assert consumer in ancestors(client)  # the outgoing webhook request, inside the task
    print("\nTRACE", " -> ".join(f"{s.kind.name}:{s.name}" for s in [*reversed(ancestors(client)), client]))

    # The context travelled in the message headers; the task's arguments are only ids.
    headers, body = next((h, b) for h, b in published if h.get("task") == "webhooks.deliver_webhook")
    assert format(trace_id, "032x") in str(headers.get("traceparent", "")), headers
    assert "traceparent" not in str(body[0]) and "traceparent" not in str(body[1])
    # Webhook URLs are reduced to scheme://host in spans (paths and queries may hold secrets).
    assert client.attributes.get("url.full", client.attributes.get("http.url")) == "http://127.0.0.1/"
    # Log lines written inside the task carry its trace id.
    assert any(getattr(rec, "otelTraceID", "0") == format(trace_id, "032x") for rec in logs.records)
