"""Moved to ``lc2backup.domain.wire`` (the domain must not import eventing); kept for callers not yet moved."""

from lc2backup.domain.wire import (
    EVENT_ID_NAMESPACE,
    DomainEvent,
    Envelope,
    EventRegistry,
    RecordedEvent,
    TraceContext,
    WireModel,
    decode_envelope,
    encode_envelope,
    event_id,
)

__all__ = [
    "EVENT_ID_NAMESPACE",
    "DomainEvent",
    "Envelope",
    "EventRegistry",
    "RecordedEvent",
    "TraceContext",
    "WireModel",
    "decode_envelope",
    "encode_envelope",
    "event_id",
]
