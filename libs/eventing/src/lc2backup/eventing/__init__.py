"""Event envelope, JetStream event store, durable consumer runner and dead letters.

Import the names below; modules are private unless named here.
"""

from lc2backup.eventing.aggregates import Fold, Loaded, Recorded, Repository
from lc2backup.eventing.caching import Kept, StateCache
from lc2backup.eventing.consuming import ConsumerRunner, DeadLetterHook, Handler, RetryPolicy, RunnerStats
from lc2backup.eventing.crashpoints import arm_from_env, crash_point
from lc2backup.eventing.deadletters import DeadLetters
from lc2backup.eventing.errors import (
    AppendError,
    ConcurrencyError,
    ConflictRetriesExhausted,
    DecodeError,
    EventingError,
    HandlerOutcome,
    HistoryGap,
    PoisonMessage,
    RetryLater,
    TopologyError,
    UnknownEventType,
)
from lc2backup.eventing.events import (
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
from lc2backup.eventing.reading import Batch, DirectReader, StoredMessage
from lc2backup.eventing.store import (
    BACKUP_HEADER,
    TYPE_HEADER,
    AppendResult,
    Causation,
    EventStore,
    History,
    message_digest,
    read_event,
)
from lc2backup.eventing.topology import (
    ConsumerSpec,
    Topology,
    ensure_consumer,
    ensure_lanes,
    ensure_streams,
)
from lc2backup.eventing.tracing import consuming_span, current_trace_context

__all__ = [
    "BACKUP_HEADER",
    "TYPE_HEADER",
    "AppendError",
    "AppendResult",
    "Batch",
    "Causation",
    "ConcurrencyError",
    "ConflictRetriesExhausted",
    "ConsumerRunner",
    "ConsumerSpec",
    "DeadLetterHook",
    "DeadLetters",
    "DecodeError",
    "DirectReader",
    "DomainEvent",
    "Envelope",
    "EventRegistry",
    "EventStore",
    "EventingError",
    "Fold",
    "Handler",
    "HandlerOutcome",
    "History",
    "HistoryGap",
    "Kept",
    "Loaded",
    "PoisonMessage",
    "Recorded",
    "RecordedEvent",
    "Repository",
    "RetryLater",
    "RetryPolicy",
    "RunnerStats",
    "StateCache",
    "StoredMessage",
    "Topology",
    "TopologyError",
    "TraceContext",
    "UnknownEventType",
    "WireModel",
    "arm_from_env",
    "consuming_span",
    "crash_point",
    "current_trace_context",
    "decode_envelope",
    "encode_envelope",
    "ensure_consumer",
    "ensure_lanes",
    "ensure_streams",
    "event_id",
    "message_digest",
    "read_event",
]
