"""Folds kept between deliveries, against a real nats-server: a kept fold plus the tail equals a full load.

What the server served is counted by a wiretap, a separate NATS connection subscribed to the Direct Get API
subject and to the reply inboxes: the requests (and where they start) and the stored messages sent back, not
figures our own code keeps. "Another replica" is another process with its own connection and store.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from lc2backup.devstack import NatsServer
from lc2backup.domain import BackupState, fold, registry
from lc2backup.domain import events as ev
from lc2backup.eventing import (
    Causation,
    DomainEvent,
    EventStore,
    Kept,
    Repository,
    Topology,
    ensure_streams,
)
from tests.domain.test_fold import SOURCE, SPEC

CAUSE = Causation("cmd-1", correlation_id="corr-1")
REQUESTED = ev.BackupRequested(spec=SPEC, source=SOURCE)
EXPORTING = ev.DatabaseExportStarted(operation_id="op", location="s3://b/x", format="f", restorable=True)


def progress(report: int) -> ev.DatabaseExportProgressed:
    return ev.DatabaseExportProgressed(report=report, bytes_written=report * 10)


def then(*events: DomainEvent) -> Callable[[BackupState], Sequence[DomainEvent]]:
    """A decision that appends ``events`` whatever the state (the tests decide the history themselves)."""
    return lambda _: list(events)


# Another replica: a separate process with its own connection, store and repository, appending one report.
REPLICA = """
import asyncio, sys
import nats
from lc2backup.domain import events as ev, fold, registry
from lc2backup.eventing import Causation, EventStore, Repository

async def main(url: str, backup_id: str, report: int) -> None:
    nc = await nats.connect(url)
    store = EventStore(nc, registry(), producer="replica-2")
    event = ev.DatabaseExportProgressed(report=report, bytes_written=report * 10)
    await Repository(store, fold).record(backup_id, Causation("replica-2"), lambda _: [event])
    await store.close()
    await nc.drain()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def replica_appends(url: str, backup_id: str, report: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", REPLICA, url, backup_id, str(report)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Seen:
    requests: list[dict[str, object]] = field(default_factory=list)  # Direct Get requests, as sent
    served: list[int] = field(default_factory=list)  # sequences of the stored messages the server sent back
    conflicts: int = 0  # appends refused for a stale expected sequence (10071)


class Wiretap:
    def __init__(self, nc: NatsClient, stream: str) -> None:
        self._nc = nc
        self._stream = stream
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._subs = [
            await self._nc.subscribe(f"$JS.API.DIRECT.GET.{self._stream}"),
            await self._nc.subscribe("_INBOX.>"),
        ]
        await self._nc.flush()

    async def _drain(self, sub: Subscription) -> list[Msg]:
        return [await sub.next_msg(timeout=5) for _ in range(sub.pending_msgs)]

    async def take(self) -> Seen:
        """Everything the server sent since the last ``take`` (the flush's PONG comes after it)."""
        await self._nc.flush()
        requests, replies = self._subs
        seen = Seen(requests=[json.loads(m.data) for m in await self._drain(requests)])
        for msg in await self._drain(replies):
            headers = msg.headers or {}
            if "Nats-Sequence" in headers and headers.get("Nats-Stream") == self._stream:
                seen.served.append(int(headers["Nats-Sequence"]))
            elif not headers and msg.data.startswith(b"{"):
                error = json.loads(msg.data).get("error") or {}
                seen.conflicts += error.get("err_code") == 10071
        return seen


@pytest.fixture
async def tap(nats_server: NatsServer, topology: Topology) -> AsyncIterator[Wiretap]:
    client = await nats.connect(nats_server.url)
    wiretap = Wiretap(client, topology.events_stream)
    await wiretap.start()
    yield wiretap
    await client.close()  # not drain: it would wait for the messages nobody took


@pytest.fixture
async def replica(nats_server: NatsServer, topology: Topology) -> AsyncIterator[EventStore]:
    """A second replica's store in this process: its own connection and its own kept folds."""
    client = await nats.connect(nats_server.url)
    other = EventStore(client, registry(), producer="replica-2", topology=topology)
    yield other
    await other.close()
    await client.drain()


async def full(store: EventStore, backup_id: str) -> BackupState:
    return fold(backup_id, (await store.load(backup_id)).events)


async def test_a_kept_fold_equals_a_full_load_after_many_appends_by_two_replicas(
    store: EventStore, replica: EventStore
) -> None:
    mine, theirs = Repository(store, fold), Repository(replica, fold)
    await mine.record("b1", CAUSE, then(REQUESTED, EXPORTING))
    tails = 0
    for report in range(1, 121):
        writer = mine if report % 3 else theirs  # every third report by the other replica
        recorded = await writer.record("b1", CAUSE, then(progress(report)))
        assert recorded.state == await full(writer.store, "b1")
        state, loaded = await mine.load("b1")
        assert state == await full(store, "b1"), f"after report {report}"
        tails += loaded.tail
    assert tails == 120  # every load was a tail read: the kept fold never had to be dropped
    assert state.database.export is not None and state.database.export.bytes_written == 1200
    assert state.event_count == 122


async def test_a_load_reads_only_the_messages_after_the_kept_fold(
    store: EventStore, nc: NatsClient, replica: EventStore, tap: Wiretap
) -> None:
    await store.append("b1", [REQUESTED, EXPORTING, *map(progress, range(1, 299))], expected_version=0, causation=CAUSE)
    backups = Repository(store, fold)
    await backups.load("b1")
    first = await tap.take()
    assert len(first.served) == 300 and first.requests[0]["seq"] == 1  # the first load reads everything
    kept = store.states.get("b1", fold)
    assert kept is not None and kept.version == 300

    await Repository(replica, fold).record("b1", CAUSE, then(progress(299), progress(300), progress(301)))
    await tap.take()
    state, loaded = await backups.load("b1")
    seen = await tap.take()
    assert [r["seq"] for r in seen.requests] == [300]  # one request, starting at the kept position
    assert seen.served == [300, 301, 302, 303]  # the anchor and the three new events: nothing before them
    assert loaded.tail and loaded.read == 4 and loaded.version == 303
    assert state == await full(store, "b1")

    # Positive control: the same check catches a load that reads the whole history (no kept folds).
    uncached = EventStore(nc, registry(), producer="tests", cached_backups=0)
    await tap.take()
    again, loaded = await Repository(uncached, fold).load("b1")
    seen = await tap.take()
    assert len(seen.served) == 303 and not loaded.tail and again == state
    await uncached.close()


async def test_a_conflict_with_another_process_decides_again_on_a_full_load(
    store: EventStore, topology: Topology, nats_server: NatsServer, tap: Wiretap
) -> None:
    backups = Repository(store, fold)
    await backups.record("b1", CAUSE, then(REQUESTED, EXPORTING, progress(1)))
    decisions: list[BackupState] = []

    def decide(state: BackupState) -> Sequence[DomainEvent]:
        decisions.append(state)
        if len(decisions) == 1:  # between our load and our append, another replica appends
            replica_appends(nats_server.url, "b1", 2)
        return [progress(3)]

    await tap.take()
    recorded = await backups.record("b1", CAUSE, decide)
    seen = await tap.take()
    assert len(decisions) == 2 and seen.conflicts == 1  # refused at the server, decided again ...
    loads = [r["seq"] for r in seen.requests if r["next_by_subj"] == topology.backup_subjects("b1")]
    assert loads == [3, 1, 1]  # ... on a full load: our tail read, the replica's load, then ours in full
    assert decisions[0].database.progress_reports == 1 and decisions[1].database.progress_reports == 2
    assert recorded.state == await full(store, "b1")
    assert recorded.state.database.progress_reports == 3 and recorded.state.event_count == 5

    replica_appends(nats_server.url, "b1", 4)  # the fold kept after our append is still continued correctly
    state, loaded = await backups.load("b1")
    assert loaded.tail and state == await full(store, "b1") and state.database.progress_reports == 4


async def test_two_replicas_racing_lose_nothing_and_keep_correct_folds(store: EventStore, replica: EventStore) -> None:
    """Both replicas append to one backup at once, conflicting often; each replica's kept fold stays right."""
    await store.append("b1", [REQUESTED, EXPORTING], expected_version=0, causation=CAUSE)
    repositories = [Repository(store, fold), Repository(replica, fold)]

    async def reports(backups: Repository[BackupState], numbers: range) -> None:
        for n in numbers:

            def decide(state: BackupState, n: int = n) -> Sequence[DomainEvent]:
                return [] if n <= state.database.progress_reports else [progress(n)]

            await backups.record("b1", CAUSE, decide)

    # Interleaved numbers: each replica skips a report the other already got past (a decision, not a blind append).
    await asyncio.gather(reports(repositories[0], range(1, 41)), reports(repositories[1], range(1, 41)))
    truth = await full(store, "b1")
    for backups in repositories:
        state, _ = await backups.load("b1")  # a tail, or in full if its last append was a duplicate
        again, loaded = await backups.load("b1")
        assert state == again == truth and loaded.tail
    assert truth.database.progress_reports == 40 and truth.event_count == 42


async def _gap_scenario(store: EventStore, backups: Repository[BackupState]) -> Kept:
    await backups.record("b1", CAUSE, then(REQUESTED, EXPORTING, *map(progress, range(1, 6))))
    kept = store.states.get("b1", fold)
    assert kept is not None and kept.version == 7
    return kept


async def _naive(store: EventStore, kept: Kept) -> BackupState:
    """What a kept fold without the anchor check would return: the kept state plus what follows its version."""
    after = [e for e in (await store.load("b1")).events if e.sequence > kept.version]
    state: BackupState = kept.state
    return fold("b1", after, state)


async def test_a_recreated_stream_is_a_gap_loaded_in_full(
    store: EventStore, nc: NatsClient, topology: Topology, tap: Wiretap
) -> None:
    backups = Repository(store, fold)
    kept = await _gap_scenario(store, backups)
    await nc.jetstream().delete_stream(topology.events_stream)
    await ensure_streams(nc.jetstream(), topology)
    # the same number of messages, other reports: the kept position exists and holds other bytes
    await store.append("b1", [REQUESTED, EXPORTING, *map(progress, range(11, 17))], expected_version=0, causation=CAUSE)
    await tap.take()
    state, loaded = await backups.load("b1")
    seen = await tap.take()
    truth = await full(store, "b1")
    assert state == truth and state.database.progress_reports == 16 and not loaded.tail
    assert [r["seq"] for r in seen.requests] == [7, 1]  # the anchored tail read, then the full load
    assert await _naive(store, kept) != truth  # positive control: without the check the state would be wrong


async def test_a_deleted_anchor_is_a_gap_loaded_in_full(
    store: EventStore, nc: NatsClient, topology: Topology, nats_server: NatsServer
) -> None:
    js = nc.jetstream()
    await js.delete_stream(topology.events_stream)
    await ensure_streams(js, Topology(deny_delete=False))
    backups = Repository(store, fold)
    kept = await _gap_scenario(store, backups)
    replica_appends(nats_server.url, "b1", 6)
    await js.delete_msg(topology.events_stream, kept.version)
    state, loaded = await backups.load("b1")
    truth = await full(store, "b1")
    assert state == truth and state.event_count == 7 and not loaded.tail
    assert await _naive(store, kept) != truth  # positive control


async def test_a_forced_stale_entry_is_a_gap_loaded_in_full(store: EventStore) -> None:
    backups = Repository(store, fold)
    kept = await _gap_scenario(store, backups)
    await backups.record("b2", CAUSE, then(REQUESTED))
    stranger = store.states.get("b2", fold)
    assert stranger is not None
    # Another backup's fold and anchor, filed under b1 at b1's position: a tail read cannot continue it.
    forced = Kept(stranger.state, kept.version, stranger.anchor, stranger.origin)
    store.states.discard("b1")
    store.states.put("b1", fold, forced)
    state, loaded = await backups.load("b1")
    truth = await full(store, "b1")
    assert state == truth and not loaded.tail
    assert await _naive(store, forced) != truth  # positive control


async def test_least_recently_used_backups_are_evicted_and_finished_ones_dropped(
    store: EventStore, nc: NatsClient
) -> None:
    small = EventStore(nc, registry(), producer="tests", cached_backups=2)
    backups = Repository(small, fold, finished=lambda s: s.terminal)
    for backup_id in ("a", "b", "c"):
        await backups.record(backup_id, CAUSE, then(REQUESTED))
    assert len(small.states) == 2 and "a" not in small.states
    state, loaded = await backups.load("a")  # evicted: loaded in full, and kept again ("b" goes)
    assert not loaded.tail and state == await full(store, "a")
    assert "a" in small.states and "b" not in small.states
    _, loaded = await backups.load("c")
    assert loaded.tail

    recorded = await backups.record("c", CAUSE, then(ev.BackupFailed(branch="backup", reason="x")))
    assert recorded.state.terminal and "c" not in small.states  # an ended backup is not kept
    _, loaded = await backups.load("c")
    assert not loaded.tail and "c" not in small.states
    await small.close()


def test_folding_onto_a_fold_equals_folding_from_the_start() -> None:
    from tests.domain.test_fold import recorded

    history = recorded(
        [REQUESTED, EXPORTING, *map(progress, range(1, 8)), ev.BackupFailed(branch="backup", reason="x")]
    )
    whole = fold("b1", history)
    for cut in range(len(history) + 1):
        assert fold("b1", history[cut:], fold("b1", history[:cut])) == whole


async def test_poison_in_the_tail_is_skipped_as_in_a_full_load(
    store: EventStore, nc: NatsClient, topology: Topology
) -> None:
    backups = Repository(store, fold)
    await backups.record("b1", CAUSE, then(REQUESTED, EXPORTING, progress(1)))
    subject = topology.event_subject("b1", "DatabaseExportProgressed")
    poison = await nc.jetstream().publish(subject, b"not an envelope", stream=topology.events_stream)
    state, loaded = await backups.load("b1")
    history = await store.load("b1")
    assert history.skipped and history.skipped[0][0] == poison.seq
    assert loaded.tail and loaded.version == history.version == poison.seq and state == fold("b1", history.events)
    recorded = await backups.record("b1", CAUSE, then(progress(2)))  # guarded by the poison's sequence
    state, loaded = await backups.load("b1")
    assert loaded.tail and state == recorded.state == await full(store, "b1")
    assert state.database.progress_reports == 2 and state.event_count == 4
