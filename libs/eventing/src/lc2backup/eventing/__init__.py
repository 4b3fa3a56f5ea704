"""JetStream event store, durable consumer runner, dead letters and topology.

Import the names below; modules are private unless named here. The envelope, the payload base and the type
registry live in ``lc2backup.domain.wire`` (pure); the names re-exported from there below are for callers not
yet moved.
"""

from lc2backup.domain.wire import (
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
from lc2backup.eventing.aggregates import Fold, Loaded, Recorded, Repository
from lc2backup.eventing.caching import Kept, StateCache
from lc2backup.eventing.commands import command_id, message_id
from lc2backup.eventing.consuming import ConsumerRunner, DeadLetterHook, Handler, RetryPolicy, RunnerStats
from lc2backup.eventing.deadletters import DeadLetters
from lc2backup.eventing.errors import (
    AppendError,
    ConcurrencyError,
    ConflictRetriesExhausted,
    EventingError,
    HandlerOutcome,
    HistoryGap,
    PoisonMessage,
    RetryLater,
    TopologyError,
    UnreadableMessage,
)
from lc2backup.eventing.leases import Lease, LeasedWork, Leases
from lc2backup.eventing.reading import Batch, DirectReader, StoredMessage
from lc2backup.eventing.steps import StepHook, no_step
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
    ensure_leases,
    ensure_streams,
)
from lc2backup.eventing.tracing import consuming_span, current_trace_context

__all__ = [
    "BACKUP_HEADER",
    "TYPE_HEADER",
    "command_id",
    "message_id",
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
    "Lease",
    "LeasedWork",
    "Leases",
    "Loaded",
    "PoisonMessage",
    "Recorded",
    "RecordedEvent",
    "Repository",
    "RetryLater",
    "RetryPolicy",
    "RunnerStats",
    "StateCache",
    "StepHook",
    "StoredMessage",
    "Topology",
    "TopologyError",
    "TraceContext",
    "UnreadableMessage",
    "WireModel",
    "consuming_span",
    "current_trace_context",
    "decode_envelope",
    "encode_envelope",
    "ensure_consumer",
    "ensure_lanes",
    "ensure_leases",
    "ensure_streams",
    "event_id",
    "message_digest",
    "no_step",
    "read_event",
]
