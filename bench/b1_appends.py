"""B1 — event-store appends/s: ``EventStore.append`` against raw ``js.publish`` of the same bytes and headers.

Both write ``BackupRequested`` events (the largest one, ~1 KB) to the same stream on the same fresh
nats-server, each to a new backup subject with ``Nats-Expected-Last-Subject-Sequence: 0``, a deterministic
``Nats-Msg-Id`` and our own headers. The raw baseline publishes bytes encoded beforehand, so the ratio is
what our append adds: building and encoding the envelope, the trace context, the bookkeeping of the result.
Measured awaited one by one (one round trip each) and pipelined (``b1_pipeline`` appends in flight).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import nats
from nats.js import JetStreamContext

from bench.context import Context
from bench.report import Row
from bench.stats import Goal, Measure
from bench.system import spec
from lc2backup.devstack import NatsServer
from lc2backup.domain import RequestSource, parse_spec, registry
from lc2backup.domain.events import BackupRequested
from lc2backup.domain.wire import encode_envelope
from lc2backup.eventing import BACKUP_HEADER, TYPE_HEADER, Causation, EventStore, Topology, ensure_streams

ID = "B1"
TITLE = "event-store appends/s (ours vs raw js.publish)"

Publish = tuple[str, bytes, dict[str, str]]


def _event() -> BackupRequested:
    return BackupRequested(
        spec=parse_spec(spec("liferay-documents", "liferay-backups")),
        source=RequestSource(kind="nats", command_id="bench-request"),
    )


def _raw_messages(store: EventStore, event: BackupRequested, count: int) -> list[Publish]:
    """What ``EventStore.append`` would publish for ``count`` new backups, encoded ahead of time."""
    topology = store.topology
    out = []
    for _ in range(count):
        backup_id = str(uuid.uuid4())
        envelope = store.envelope(backup_id, event, Causation("bench-request"), backup_id)
        headers = {
            "Nats-Msg-Id": str(envelope.id),
            "Nats-Expected-Last-Subject-Sequence": "0",
            "Nats-Expected-Last-Subject-Sequence-Subject": topology.backup_subjects(backup_id),
            TYPE_HEADER: envelope.type,
            BACKUP_HEADER: backup_id,
        }
        out.append((topology.event_subject(backup_id, envelope.type), encode_envelope(envelope), headers))
    return out


async def _timed(count: int, in_flight: int, one: Callable[[int], Awaitable[object]]) -> float:
    """Rate of ``count`` calls of ``one(i)`` with at most ``in_flight`` outstanding."""
    started = time.perf_counter()
    if in_flight <= 1:
        for i in range(count):
            await one(i)
    else:
        gate = asyncio.Semaphore(in_flight)

        async def bounded(i: int) -> None:
            async with gate:
                await one(i)

        await asyncio.gather(*(bounded(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def _measure(ctx: Context, js: JetStreamContext, store: EventStore) -> list[Row]:
    sizes = ctx.sizes
    event = _event()
    stream = store.topology.events_stream
    causation = Causation("bench-request")
    rows: list[Row] = []
    for label, in_flight in (
        ("awaited one by one", 1),
        (f"pipelined, {sizes.b1_pipeline} in flight", sizes.b1_pipeline),
    ):
        ours, raw = Measure("appends/s"), Measure("appends/s")
        for rep in range(sizes.b1_repetitions):
            messages = _raw_messages(store, event, sizes.b1_appends)

            async def publish(i: int, messages: list[Publish] = messages) -> object:
                subject, body, headers = messages[i]
                return await js.publish(subject, body, stream=stream, headers=headers)

            async def append(_: int) -> object:
                return await store.append(str(uuid.uuid4()), [event], expected_version=0, causation=causation)

            # Alternate which goes first: the stream grows during a repetition, and the machine drifts.
            if rep % 2 == 0:
                raw.add(await _timed(sizes.b1_appends, in_flight, publish))
                ours.add(await _timed(sizes.b1_appends, in_flight, append))
            else:
                ours.add(await _timed(sizes.b1_appends, in_flight, append))
                raw.add(await _timed(sizes.b1_appends, in_flight, publish))
        rows.append(Row(ID, f"append, {label}", ours, "raw js.publish", raw, Goal("ratio", ">=", 0.8)))
    return rows


async def run(ctx: Context) -> list[Row]:
    server = NatsServer(ctx.scratch("b1") / "nats")
    server.start()
    try:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=10)
            topology = Topology()
            await ensure_streams(js, topology)
            store = EventStore(nc, registry(), producer="bench", topology=topology)
            warm = _raw_messages(store, _event(), 20)
            for subject, body, headers in warm:  # connections, stream files, caches
                await js.publish(subject, body, stream=topology.events_stream, headers=headers)
            rows = await _measure(ctx, js, store)
            await store.close()
            return rows
        finally:
            await nc.close()
    finally:
        server.stop()
