"""The event store: one JetStream stream, one subject per backup, guarded appends, one-round-trip loads.

Append protocol (see ``reference/eventsourcing.md`` §4.3):

* every event carries ``Nats-Msg-Id`` = its deterministic id, so a retried append is a harmless duplicate;
* every event carries ``Nats-Expected-Last-Subject-Sequence`` = the sequence the decision was made on,
  checked against the backup's subjects (``…-Subject: lc2.backup.evt.<backupId>.*``), so a concurrent writer
  makes the append fail with 10071 and the caller reloads, re-decides and retries;
* an outcome-unknown failure (timeout, 10158 "in process", 503) is retried with the same id and expectation.

Poison: whoever may publish on an event subject can store bytes there that are not an event of this build
(not an envelope, truncated, an unknown type or a newer schema version). Such a message is never an event of
the backup: ``load`` skips it (loudly) and still guards the next append with its sequence, so one bad message
can neither change a backup's state nor block it; ``delivered`` refuses it, so the consumer that received it
dead-letters it with the reason.

Tail loads: ``load_after`` reads only the messages after a position a caller already folded (a kept fold,
``lc2backup.eventing.caching``). It starts *at* that position and requires the very message the caller saw
there (same sequence, same digest of subject and bytes), so a deleted message or a recreated stream raises
``HistoryGap`` instead of folding a tail onto a state it does not follow.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError

from lc2backup.domain.errors import WireError
from lc2backup.domain.wire import (
    DomainEvent,
    Envelope,
    EventRegistry,
    RecordedEvent,
    decode_envelope,
    encode_envelope,
    event_id,
)
from lc2backup.eventing.caching import StateCache
from lc2backup.eventing.errors import (
    AppendError,
    ConcurrencyError,
    ConflictRetriesExhausted,
    HistoryGap,
    UnreadableMessage,
)
from lc2backup.eventing.reading import DirectReader, StoredMessage
from lc2backup.eventing.steps import StepHook, no_step
from lc2backup.eventing.topology import Topology
from lc2backup.eventing.tracing import current_trace_context

log = logging.getLogger(__name__)

_CONFLICT_CODES = {10071, 10164}
_UNKNOWN_OUTCOME_CODES = {10158, 10163}
_LOOKUP_BATCH = 256
TYPE_HEADER = "Lc2-Event-Type"
BACKUP_HEADER = "Lc2-Backup-Id"


@dataclass(frozen=True, slots=True)
class History:
    """A backup's events in order, and the stream sequence of the last message on its subjects (0: none yet).

    ``skipped`` holds (sequence, reason) of the messages on the backup's subjects that are not readable events.
    ``anchor`` is the digest of the message at ``version`` (``message_digest``; empty when there is none).
    ``after``: 0 for a whole history; for a tail (``EventStore.load_after``) the version its events follow.
    """

    backup_id: str
    events: tuple[RecordedEvent, ...]
    version: int
    skipped: tuple[tuple[int, str], ...] = ()
    anchor: str = ""
    after: int = 0

    @property
    def correlation_id(self) -> str | None:
        return self.events[0].envelope.correlation_id if self.events else None


@dataclass(frozen=True, slots=True)
class Causation:
    """Why we are appending: the message being handled, and the workflow it belongs to."""

    causation_id: str | None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    version: int
    appended: tuple[RecordedEvent, ...]
    duplicates: int = 0
    history: History | None = None  # what ``execute`` decided on
    anchor: str = ""  # digest of the message at ``version`` when this call stored it ("" after a duplicate)

    def events(self) -> tuple[RecordedEvent, ...]:
        """The backup's whole history after this append (for ``execute`` results)."""
        before = self.history.events if self.history else ()
        return before + self.appended


Decide = Callable[[History], Sequence[DomainEvent]]


def _now() -> datetime:
    return datetime.now(UTC)


def message_digest(subject: str, data: bytes) -> str:
    """Identifies a stored message by content: a position's anchor (same sequence and digest: same message)."""
    return hashlib.blake2b(subject.encode() + b"\0" + data, digest_size=16).hexdigest()


def read_event(registry: EventRegistry, topology: Topology, message: StoredMessage) -> RecordedEvent:
    """A stored message as an event: a valid envelope of a known type, on the very subject its envelope names.

    Raises ``UnreadableMessage`` otherwise (the domain's ``DecodeError`` / ``UnknownEventType`` as its cause); an envelope published on another backup's (or
    type's) subject is refused too, or it would count as an event of the backup whose subject it sits on.
    """
    try:
        envelope = decode_envelope(message.data)
        if message.subject != topology.event_subject(envelope.backup_id, envelope.type):
            raise UnreadableMessage(
                f"subject {message.subject[:200]} does not match the envelope"
                f" (backup {envelope.backup_id}, {envelope.type})"
            )
        return RecordedEvent(envelope, registry.decode_payload(envelope), message.sequence)
    except WireError as exc:
        raise UnreadableMessage(str(exc)) from exc


class EventStore:
    def __init__(
        self,
        nc: NatsClient,
        registry: EventRegistry,
        *,
        producer: str,
        topology: Topology | None = None,
        publish_timeout: float = 5.0,
        clock: Callable[[], datetime] = _now,
        cached_backups: int = 1024,
        at_step: StepHook = no_step,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream(timeout=publish_timeout)
        self.registry = registry
        self.producer = producer
        self.topology = topology or Topology()
        self._reader = DirectReader(nc, self.topology.events_stream)
        self._clock = clock
        # The folds repositories keep between deliveries (lc2backup.eventing.caching), one map per process.
        self.states = StateCache(cached_backups)
        self._at_step = at_step

    @property
    def reader(self) -> DirectReader:
        return self._reader

    def decode(self, message: StoredMessage) -> RecordedEvent:
        return read_event(self.registry, self.topology, message)

    def delivered(self, msg: Msg) -> RecordedEvent:
        """The event a consumer was handed (``read_event``); anything else raises and is dead-lettered."""
        try:
            sequence = int(msg.metadata.sequence.stream)
        except Exception:
            sequence = 0
        return self.decode(StoredMessage(sequence, msg.subject, msg.data, dict(msg.headers or {})))

    async def load(self, backup_id: str) -> History:
        messages = await self._reader.read_all(self.topology.backup_subjects(backup_id))
        return self._history(backup_id, messages, after=0)

    async def load_after(self, backup_id: str, version: int, anchor: str) -> History:
        """The events after ``version``, which must still hold the message whose digest is ``anchor``.

        One read from ``version`` on (the anchor and the tail, in batches); raises ``HistoryGap`` when the
        first message there is not the anchor: the caller's fold does not end where this subject now does.
        """
        subject = self.topology.backup_subjects(backup_id)
        messages = await self._reader.read_all(subject, start_sequence=version)
        if not messages or messages[0].sequence != version:
            found = f"sequence {messages[0].sequence}" if messages else "nothing"
            raise HistoryGap(subject, version, f"is gone (the subject's first message from there: {found})")
        if message_digest(messages[0].subject, messages[0].data) != anchor:
            raise HistoryGap(subject, version, "holds other bytes now")
        return self._history(backup_id, messages[1:], after=version, anchor=anchor)

    def _history(self, backup_id: str, messages: Sequence[StoredMessage], after: int, anchor: str = "") -> History:
        events: list[RecordedEvent] = []
        skipped: list[tuple[int, str]] = []
        for message in messages:
            try:
                events.append(self.decode(message))
            except UnreadableMessage as exc:  # not an event of this backup
                skipped.append((message.sequence, str(exc)))
                log.warning(
                    "backup %s: message seq=%d is not a readable event, skipped: %s", backup_id, message.sequence, exc
                )
        if not messages:
            return History(backup_id, (), after, anchor=anchor, after=after)
        last = messages[-1]
        anchor = message_digest(last.subject, last.data)
        return History(backup_id, tuple(events), last.sequence, tuple(skipped), anchor, after)

    def envelope(self, backup_id: str, event: DomainEvent, causation: Causation, correlation: str) -> Envelope:
        return Envelope(
            id=event_id(backup_id, event.dedupe_key()),
            type=event.event_type,
            schema_version=event.schema_version,
            backup_id=backup_id,
            occurred_at=self._clock(),
            correlation_id=correlation,
            causation_id=causation.causation_id,
            producer=self.producer,
            trace=current_trace_context(),
            data=event.model_dump(mode="json", by_alias=True),
        )

    async def append(
        self,
        backup_id: str,
        events: Sequence[DomainEvent],
        *,
        expected_version: int,
        causation: Causation,
        correlation_id: str | None = None,
    ) -> AppendResult:
        """Append in order, each guarded by the sequence of the one before. Raises ConcurrencyError."""
        correlation = correlation_id or causation.correlation_id or backup_id
        expected = expected_version
        appended: list[RecordedEvent] = []
        duplicates = 0
        anchor = ""
        for event in events:
            envelope = self.envelope(backup_id, event, causation, correlation)
            ack, anchor = await self._publish(envelope, expected)
            duplicates += bool(ack.duplicate)
            expected = ack.seq
            appended.append(RecordedEvent(envelope, event, ack.seq))
        return AppendResult(expected, tuple(appended), duplicates, anchor=anchor)

    async def _publish(self, envelope: Envelope, expected: int, attempts: int = 5) -> tuple[PubAck, str]:
        """The ack, and the stored message's digest (empty for a duplicate: stored earlier, maybe other bytes)."""
        subject = self.topology.event_subject(envelope.backup_id, envelope.type)
        guarded = self.topology.backup_subjects(envelope.backup_id)
        headers = {
            "Nats-Msg-Id": str(envelope.id),
            "Nats-Expected-Last-Subject-Sequence": str(expected),
            "Nats-Expected-Last-Subject-Sequence-Subject": guarded,
            TYPE_HEADER: envelope.type,
            BACKUP_HEADER: envelope.backup_id,
        }
        if envelope.trace.traceparent:
            headers["traceparent"] = envelope.trace.traceparent
        body = encode_envelope(envelope)
        last: Exception | None = None
        self._at_step(f"before-append:{envelope.type}")
        for attempt in range(attempts):
            try:
                ack = await self._js.publish(subject, body, stream=self.topology.events_stream, headers=headers)
                self._at_step(f"after-append:{envelope.type}")
                return ack, "" if ack.duplicate else message_digest(subject, body)
            except APIError as exc:
                if exc.err_code in _CONFLICT_CODES:
                    mine = await self._already_appended(subject, expected, headers["Nats-Msg-Id"])
                    if mine is not None:
                        return mine, ""
                    raise ConcurrencyError(subject, expected, exc.description or "") from exc
                if exc.err_code not in _UNKNOWN_OUTCOME_CODES and exc.code != 503:
                    raise AppendError(f"append to {subject} refused: {exc.description}") from exc
                last = exc
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionClosedError) as exc:
                last = exc
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0) + random.random() * 0.05)
        raise AppendError(f"append to {subject} failed after {attempts} attempts: {last!r}") from last

    async def _already_appended(self, subject: str, expected: int, msg_id: str) -> PubAck | None:
        """Is our event already recorded after ``expected`` (a lost ack)? Then the append is done.

        nats-server checks the expected sequence before the Nats-Msg-Id dedupe on a single-replica stream,
        so a retry of an append that did land comes back as a conflict; the stored id tells them apart. The
        same id always lands on the same subject (both derive from the backup and the event), so the lookup
        reads that subject only, in pages, up to its end: an append that expects a version from before
        hundreds of its own type's events (a progress report decided on an old load) is still recognised.
        """
        start = expected + 1
        while True:
            page = await self._reader.read(subject, start, batch=_LOOKUP_BATCH)
            for message in page.messages:
                if message.headers.get("Nats-Msg-Id") == msg_id:
                    return PubAck(stream=self.topology.events_stream, seq=message.sequence, duplicate=True)
            if not page.more or not page.messages:
                return None
            start = page.messages[-1].sequence + 1

    async def execute(
        self, backup_id: str, decide: Decide, *, causation: Causation, max_attempts: int = 8
    ) -> AppendResult:
        """Load, decide, append; on a conflict reload and decide again (bounded, jittered)."""
        for attempt in range(max_attempts):
            history = await self.load(backup_id)
            events = decide(history)
            if not events:
                return AppendResult(history.version, (), history=history)
            try:
                result = await self.append(
                    backup_id,
                    events,
                    expected_version=history.version,
                    causation=causation,
                    correlation_id=history.correlation_id,
                )
            except ConcurrencyError:
                await asyncio.sleep(random.random() * 0.01 * (attempt + 1))
                continue
            return AppendResult(result.version, result.appended, result.duplicates, history)
        raise ConflictRetriesExhausted(self.topology.backup_subjects(backup_id), -1, f"after {max_attempts} attempts")

    async def stream_last_sequence(self) -> int:
        info = await self._js.stream_info(self.topology.events_stream)
        return int(info.state.last_seq)

    async def close(self) -> None:
        await self._reader.close()
