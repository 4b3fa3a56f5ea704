"""OpenTelemetry tracing: one tracer provider per process, W3C propagation through event envelopes."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def configure_tracing(service: str, console: bool = False) -> TracerProvider:
    """Spans are always created (so trace ids flow through events); ``console`` also prints them.

    An OTLP exporter can be added by installing ``opentelemetry-exporter-otlp`` and registering it here.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": f"lc2backup-{service}"}))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
