"""OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (the exporter reads the standard
OTEL_* variables: endpoint, headers, OTEL_SERVICE_NAME...).

One trace runs from the API request (Django instrumentation) through the on-commit publish (Celery
instrumentation: a producer span, its context injected into the message *headers*, never the task
arguments) to the worker's task span and the outgoing webhook request (aiohttp client instrumentation). Webhook
URLs are reduced to scheme://host in spans: paths and queries may carry a receiver's secrets.

Every log record carries `otelTraceID` / `otelSpanID` (a record factory, installed always; "0" outside a
span), and the log formats print the trace id when tracing is on.
"""

import logging
import os

from opentelemetry import trace

_state = {"provider": None, "processor": None, "instrumented": False}


def enabled():
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def _install_log_record_factory():
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_taskmgmt_trace", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        ctx = trace.get_current_span().get_span_context()
        record.otelTraceID = format(ctx.trace_id, "032x") if ctx.is_valid else "0"
        record.otelSpanID = format(ctx.span_id, "016x") if ctx.is_valid else "0"
        return record

    factory._taskmgmt_trace = True
    logging.setLogRecordFactory(factory)


class _Switch:
    """A span processor whose target can be replaced (tests swap in an in-memory exporter)."""

    def __init__(self, target):
        self.target = target

    def on_start(self, span, parent_context=None):
        self.target.on_start(span, parent_context=parent_context)

    def on_end(self, span):
        self.target.on_end(span)

    def _on_ending(self, span):
        pass

    def shutdown(self):
        self.target.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.target.force_flush(timeout_millis)


def _redact_url(span, params):
    """aiohttp request hook: the span keeps scheme://host/ only (paths and queries may carry secrets)."""
    if span is None or not span.is_recording():
        return
    url = params.url
    for key in ("url.full", "http.url"):
        span.set_attribute(key, f"{url.scheme}://{url.host}/")


def configure(exporter=None, *, simple=False):
    """Turn tracing on (when configured, or with `exporter` from a test). Idempotent."""
    _install_log_record_factory()
    if exporter is None and not enabled():
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    processor = (SimpleSpanProcessor if simple else BatchSpanProcessor)(exporter)
    if _state["provider"] is None:
        provider = TracerProvider(
            resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "taskmgmt")})
        )
        _state["processor"] = _Switch(processor)
        provider.add_span_processor(_state["processor"])
        trace.set_tracer_provider(provider)
        _state["provider"] = provider
    else:
        _state["processor"].target = processor
    if not _state["instrumented"]:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument(excluded_urls="healthz,metrics")
        CeleryInstrumentor().instrument()
        AioHttpClientInstrumentor().instrument(request_hook=_redact_url)
        _state["instrumented"] = True
    return True


def unconfigure():
    """Undo the instrumentation (tests)."""
    if not _state["instrumented"]:
        return
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    DjangoInstrumentor().uninstrument()
    CeleryInstrumentor().uninstrument()
    AioHttpClientInstrumentor().uninstrument()
    _state["instrumented"] = False


class TraceIdFilter(logging.Filter):
    """For handlers: make sure a record has otelTraceID (records made before the factory was installed)."""

    def filter(self, record):
        if not hasattr(record, "otelTraceID"):
            record.otelTraceID = "0"
        return True
