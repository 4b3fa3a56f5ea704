"""Events on the wire: the envelope every event travels in, the payload base class, and the type registry.

Pure (pydantic only), so the domain's events and fold depend on nothing that does I/O; ``lc2backup.eventing``
stores and delivers these over NATS.

The envelope carries what every consumer needs without knowing the payload (id, type, schema version,
backup id, times, correlation/causation, producer, W3C trace context); the payload is a frozen pydantic
model. Old schema versions are upcast on read, so folds only ever see the current version.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from lc2backup.domain.errors import DecodeError, UnknownEventType

EVENT_ID_NAMESPACE = uuid.UUID("6f1b8b5e-3c59-4d0c-9d1e-2a9e7c4b1f00")

JsonDict = dict[str, Any]
Upcaster = Callable[[JsonDict], JsonDict]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python, immutable, strict about unknown fields."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, ser_json_timedelta="float"
    )


class DomainEvent(WireModel):
    """Base of every event payload. Subclasses set ``event_type`` and bump ``schema_version`` on change."""

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def dedupe_key(self) -> str:
        """What makes this event unique within its backup; events that can repeat override it."""
        return self.event_type


class TraceContext(WireModel):
    traceparent: str | None = None
    tracestate: str | None = None


class Envelope(WireModel):
    """The JSON document stored in JetStream for every event."""

    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)

    id: uuid.UUID
    type: str = Field(min_length=1, max_length=128)
    schema_version: int = Field(ge=1)
    backup_id: str = Field(min_length=1, max_length=64)
    occurred_at: datetime
    correlation_id: str = Field(max_length=256)
    causation_id: str | None = Field(default=None, max_length=256)
    producer: str = Field(max_length=64)
    trace: TraceContext = TraceContext()
    data: JsonDict


def event_id(backup_id: str, dedupe_key: str) -> uuid.UUID:
    """Deterministic: the same decision about the same backup always yields the same id (and Nats-Msg-Id)."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{backup_id}/{dedupe_key}")


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as read back from the stream: envelope, decoded (upcast) payload and stream sequence."""

    envelope: Envelope
    event: DomainEvent
    sequence: int


class EventRegistry:
    """Maps type names to payload classes and holds the upcaster chains for old schema versions."""

    def __init__(self, types: Iterable[type[DomainEvent]]) -> None:
        self._types: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        for cls in types:
            if cls.event_type in self._types:
                raise ValueError(f"event type {cls.event_type} registered twice")
            self._types[cls.event_type] = cls

    @property
    def types(self) -> Mapping[str, type[DomainEvent]]:
        return dict(self._types)

    def register_upcaster(self, event_type: str, from_version: int, upcaster: Upcaster) -> None:
        """``upcaster`` turns payload version ``from_version`` into ``from_version + 1``."""
        self._upcasters[(event_type, from_version)] = upcaster

    def decode_payload(self, envelope: Envelope) -> DomainEvent:
        cls = self._types.get(envelope.type)
        if cls is None:
            raise UnknownEventType(f"unknown event type {envelope.type!r}")
        data = envelope.data
        version = envelope.schema_version
        if version > cls.schema_version:
            raise UnknownEventType(
                f"{envelope.type} schema version {version} is newer than this build's {cls.schema_version}"
            )
        while version < cls.schema_version:
            upcaster = self._upcasters.get((envelope.type, version))
            if upcaster is None:
                raise UnknownEventType(f"no upcaster for {envelope.type} v{version}")
            data = upcaster(data)
            version += 1
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise DecodeError(f"invalid {envelope.type} payload: {exc}") from exc


def decode_envelope(raw: bytes) -> Envelope:
    try:
        return Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise DecodeError(f"not a valid event envelope: {exc.errors()[0]['msg']}") from exc


def encode_envelope(envelope: Envelope) -> bytes:
    return envelope.model_dump_json(by_alias=True).encode()
