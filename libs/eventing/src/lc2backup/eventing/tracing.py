"""W3C trace context in and out of envelopes, through the OpenTelemetry API (the SDK is set up by runtime)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from lc2backup.domain.wire import TraceContext

_tracer = trace.get_tracer("lc2backup.eventing")


_NO_TRACE = TraceContext()


def current_trace_context() -> TraceContext:
    if not trace.get_current_span().get_span_context().is_valid:
        return _NO_TRACE  # nothing to propagate: skip the propagators (every append asks; B1)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return TraceContext(traceparent=carrier.get("traceparent"), tracestate=carrier.get("tracestate"))


@contextmanager
def consuming_span(name: str, parent: TraceContext | None, **attributes: str | int) -> Iterator[None]:
    """A consumer span continuing the producer's trace (so one backup is one trace across services)."""
    carrier = {}
    if parent is not None and parent.traceparent:
        carrier["traceparent"] = parent.traceparent
        if parent.tracestate:
            carrier["tracestate"] = parent.tracestate
    ctx = propagate.extract(carrier)
    token = otel_context.attach(ctx)
    try:
        with _tracer.start_as_current_span(name, kind=trace.SpanKind.CONSUMER, attributes=attributes):
            yield
    finally:
        otel_context.detach(token)
