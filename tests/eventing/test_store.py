"""The event store against a real nats-server: guarded appends, deduplication, races, loads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NatsClient

from lc2backup.domain import events as ev
from lc2backup.domain import fold
from lc2backup.domain.errors import DecodeError, UnknownEventType
from lc2backup.domain.wire import DomainEvent, Envelope, encode_envelope, event_id
from lc2backup.eventing import (
    Causation,
    ConcurrencyError,
    EventingError,
    EventStore,
    History,
    Repository,
    StoredMessage,
    UnreadableMessage,
)
from tests.domain.test_fold import SOURCE, SPEC

REQUESTED = ev.BackupRequested(spec=SPEC, source=SOURCE)
CAUSE = Causation("cmd-1", correlation_id="corr-1")


async def test_append_then_load_round_trips_envelopes(store: EventStore) -> None:
    result = await store.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    history = await store.load("b1")
    assert history.version == result.version == 1
    [recorded] = history.events
    assert recorded.event == REQUESTED
    envelope = recorded.envelope
    assert (envelope.type, envelope.backup_id, envelope.producer) == ("BackupRequested", "b1", "tests")
    assert (envelope.correlation_id, envelope.causation_id) == ("corr-1", "cmd-1")
    assert envelope.trace.traceparent is None or envelope.trace.traceparent.startswith("00-")


async def test_a_new_subject_requires_expected_zero(store: EventStore) -> None:
    await store.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    with pytest.raises(ConcurrencyError):
        await store.append("b1", [ev.BackupFailed(branch="backup", reason="x")], expected_version=0, causation=CAUSE)
    assert (await store.load("b1")).version == 1


async def test_a_retried_append_is_a_harmless_duplicate(store: EventStore) -> None:
    first = await store.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    again = await store.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    assert again.duplicates == 1 and again.version == first.version
    assert len((await store.load("b1")).events) == 1


async def test_multi_event_appends_chain_their_expectations(store: EventStore) -> None:
    events: list[DomainEvent] = [
        REQUESTED,
        ev.DatabaseExportStarted(operation_id="op", location="s3://b/x", format="f", restorable=True),
    ]
    result = await store.append("b1", events, expected_version=0, causation=CAUSE)
    history = await store.load("b1")
    assert [e.sequence for e in history.events] == [1, 2] and result.version == 2
    assert history.events[1].envelope.correlation_id == "corr-1"


async def test_loads_are_per_backup_and_span_batches(store: EventStore) -> None:
    await store.append("other", [REQUESTED], expected_version=0, causation=CAUSE)
    version = 0
    progress = [ev.DatabaseExportProgressed(report=i, bytes_written=i) for i in range(1, 1201)]
    version = (await store.append("big", [REQUESTED, *progress], expected_version=version, causation=CAUSE)).version
    history = await store.load("big")
    assert len(history.events) == 1201 and history.version == version
    assert len((await store.load("other")).events) == 1
    assert (await store.load("nobody")).events == ()


async def test_two_writers_race_exactly_one_wins_the_other_re_decides(store: EventStore) -> None:
    """Both decide on the same version; one append wins, the loser reloads and decides again."""
    await store.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    decisions: dict[str, int] = {"a": 0, "b": 0}
    both_loaded = asyncio.Barrier(2)

    def writer(name: str, report: int) -> object:
        async def run() -> None:
            history = await store.load("b1")
            await both_loaded.wait()  # both now hold the same version

            def decide(h: History) -> Sequence[DomainEvent]:
                decisions[name] += 1
                done = {e.event.report for e in h.events if isinstance(e.event, ev.DatabaseExportProgressed)}
                return [] if report in done else [ev.DatabaseExportProgressed(report=report, bytes_written=report)]

            try:
                await store.append("b1", decide(history), expected_version=history.version, causation=CAUSE)
            except ConcurrencyError:
                await store.execute("b1", decide, causation=CAUSE)

        return run()

    await asyncio.gather(writer("a", 1), writer("b", 2))  # type: ignore[arg-type]
    history = await store.load("b1")
    reports = [e.event.report for e in history.events if isinstance(e.event, ev.DatabaseExportProgressed)]
    assert sorted(reports) == [1, 2]  # nothing lost, nothing doubled
    assert sorted(decisions.values()) == [1, 2]  # exactly one writer had to decide again
    assert [e.sequence for e in history.events] == sorted(e.sequence for e in history.events)


async def test_a_lost_ack_is_recognised_even_after_others_appended(store: EventStore) -> None:
    """The retry of an append that landed, after another writer appended too, is still ours: not a conflict."""
    await store.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    mine = ev.DatabaseExportProgressed(report=1, bytes_written=1)
    landed = await store.append("b1", [mine], expected_version=1, causation=CAUSE)
    await store.append("b1", [ev.DatabaseExportProgressed(report=2)], expected_version=landed.version, causation=CAUSE)
    retried = await store.append("b1", [mine], expected_version=1, causation=CAUSE)
    assert retried.version == landed.version and retried.duplicates == 1
    assert len((await store.load("b1")).events) == 3


async def test_a_lost_ack_is_recognised_hundreds_of_events_after_the_expected_sequence(store: EventStore) -> None:
    """A plain append whose event is already recorded far (> 256 events of its own type) after the sequence it
    expects returns that event as a duplicate instead of a conflict: the lookup spans the whole range."""
    await store.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    await store.append("other", [REQUESTED], expected_version=0, causation=CAUSE)  # interleaved, not counted
    progress = [ev.DatabaseExportProgressed(report=i, bytes_written=i) for i in range(1, 301)]
    before = await store.append("b1", progress, expected_version=1, causation=CAUSE)
    mine = ev.DatabaseExportProgressed(report=301, bytes_written=301)
    landed = await store.append("b1", [mine], expected_version=before.version, causation=CAUSE)
    retried = await store.append("b1", [mine], expected_version=1, causation=CAUSE)  # 300 events behind
    assert (retried.version, retried.duplicates) == (landed.version, 1)
    assert [r.sequence for r in retried.appended] == [landed.version]
    history = await store.load("b1")
    assert len(history.events) == 302 and history.version == landed.version
    with pytest.raises(ConcurrencyError):  # positive control: an event that is not recorded still conflicts
        await store.append("b1", [ev.DatabaseExportProgressed(report=302)], expected_version=1, causation=CAUSE)
    assert len((await store.load("b1")).events) == 302


async def test_repository_returns_the_state_after_the_append(store: EventStore) -> None:
    backups = Repository(store, fold)
    recorded = await backups.record("b1", CAUSE, lambda s: [] if s.exists else [REQUESTED])
    assert recorded.state.exists and len(recorded.appended) == 1
    again = await backups.record("b1", CAUSE, lambda s: [] if s.exists else [REQUESTED])
    assert again.appended == () and again.state == recorded.state


async def test_the_store_names_its_steps_to_its_hook(nc: NatsClient, store: EventStore) -> None:
    """The append boundaries the service scaffold hands to the crash points (lc2backup.runtime.crashpoints)."""
    steps: list[str] = []
    hooked = EventStore(nc, store.registry, producer="tests", topology=store.topology, at_step=steps.append)
    await hooked.append("b1", [REQUESTED], expected_version=0, causation=CAUSE)
    assert steps == ["before-append:BackupRequested", "after-append:BackupRequested"]
    await hooked.close()


def test_an_unreadable_message_is_an_eventing_error_caused_by_the_domain_codec(store: EventStore) -> None:
    """Handlers catch ``EventingError`` around ``store.decode``; the domain's codec errors must arrive as one."""
    garbage = StoredMessage(7, store.topology.event_subject("b1", "BackupRequested"), b"{not json", {})
    with pytest.raises(UnreadableMessage) as raised:
        store.decode(garbage)
    assert isinstance(raised.value, EventingError) and isinstance(raised.value.__cause__, DecodeError)
    unknown = Envelope(
        id=event_id("b1", "Nope"),
        type="Nope",
        schema_version=1,
        backup_id="b1",
        occurred_at=datetime.now(UTC),
        correlation_id="c",
        producer="tests",
        data={},
    )
    stored = StoredMessage(8, store.topology.event_subject("b1", "Nope"), encode_envelope(unknown), {})
    with pytest.raises(UnreadableMessage) as raised:
        store.decode(stored)
    assert isinstance(raised.value.__cause__, UnknownEventType)
