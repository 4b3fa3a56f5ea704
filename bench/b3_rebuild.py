"""B3 — projection rebuild: events/s replayed from the stream into PostgreSQL, against a bare COPY of the rows.

The events are real ones: ``b2_backups`` backups run through the five services with the instant provider,
then that history is published ``b3_copies`` times under fresh backup ids into a stream of its own. The
rebuild is the archiver's own (``rebuilding.rebuild``: drop, then catch up with batched Direct Get, decode,
fold, COPY of the events and upsert of the backups per batch, with the checkpoint, in one transaction). The
baseline copies the very ``backup_events`` rows the rebuild produced, in one ``copy_records_to_table``,
into an empty table of the same definition: what PostgreSQL takes just to store them.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import nats
from nats.aio.client import Client as NatsClient

from bench.b2_orchestration import DESTINATION, _flood
from bench.context import Context
from bench.report import Row
from bench.s3 import bench_s3_client, ensure_bucket
from bench.stats import Goal, Measure
from bench.system import BenchSystem
from lc2backup.archiver.rebuilding import rebuild
from lc2backup.devstack import NatsServer
from lc2backup.eventing import BACKUP_HEADER, TYPE_HEADER, DirectReader, StoredMessage, Topology, ensure_streams

ID = "B3"
TITLE = "projection rebuild from the stream into PostgreSQL"
COPY_NAMESPACE = uuid.UUID("5b0d1c3e-7a2f-4e61-9c84-1f2e3d4c5b6a")


async def _history(ctx: Context) -> list[StoredMessage]:
    """Real events: backups through the five services (instant provider), read back from their stream."""
    system = BenchSystem(ctx.stack, ctx.scratch("b3-source"), base_env={"LC2_LOCAL__MODE": "instant"})
    system.start()
    try:
        async with bench_s3_client(ctx.stack) as s3:
            await ensure_bucket(s3, DESTINATION)
        await system.connect()
        await _flood(system, ctx.sizes.b2_backups, ctx.sizes.b2_concurrency)
        assert system.nc is not None
        reader = DirectReader(system.nc, Topology().events_stream)
        messages = await reader.read_all(Topology().all_events)
        await reader.close()
        return messages
    finally:
        await system.close()
        system.stop()


async def _publish_copies(nc: NatsClient, messages: list[StoredMessage], copies: int) -> int:
    """The history ``copies`` times, each under fresh backup ids (ids replaced in subject and body)."""
    topology = Topology()
    js = nc.jetstream(timeout=30)
    await ensure_streams(js, topology)
    gate = asyncio.Semaphore(256)
    sent = 0

    async def publish(subject: str, body: bytes, headers: dict[str, str]) -> None:
        async with gate:
            await js.publish(subject, body, stream=topology.events_stream, headers=headers)

    for copy in range(copies):
        batch = []
        for m in messages:
            old = topology.backup_id_of(m.subject)
            new = str(uuid.uuid5(COPY_NAMESPACE, f"{old}/{copy}"))
            headers = {TYPE_HEADER: m.headers.get(TYPE_HEADER, ""), BACKUP_HEADER: new}
            batch.append(publish(m.subject.replace(old, new), m.data.replace(old.encode(), new.encode()), headers))
        await asyncio.gather(*batch)
        sent += len(batch)
    return sent


async def _copy_baseline(pool: asyncpg.Pool) -> float:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM backup_events ORDER BY seq")
        columns = list(rows[0].keys())
        await conn.execute("DROP TABLE IF EXISTS bench_events_copy")
        await conn.execute("CREATE TABLE bench_events_copy (LIKE backup_events INCLUDING ALL)")
        records = [tuple(r.values()) for r in rows]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_events_copy", records=records, columns=columns)
        seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_events_copy")
        return len(records) / seconds


async def run(ctx: Context) -> list[Row]:
    history = await _history(ctx)
    server = NatsServer(ctx.scratch("b3") / "nats")
    server.start()
    dsn = ctx.stack.postgres.create_database(f"b3_{uuid.uuid4().hex[:8]}")
    ours, baseline = Measure("events/s"), Measure("rows/s")
    try:
        nc = await nats.connect(server.url)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            events = await _publish_copies(nc, history, ctx.sizes.b3_copies)
            for _ in range(ctx.sizes.repetitions):
                replayed, seconds = await rebuild(nc, pool, Topology())
                if replayed != events:
                    raise RuntimeError(f"rebuild replayed {replayed} of {events} events")
                ours.add(replayed / seconds)
                baseline.add(await _copy_baseline(pool))
        finally:
            await pool.close()
            await nc.close()
    finally:
        server.stop()
    backups = len({Topology().backup_id_of(m.subject) for m in history}) * ctx.sizes.b3_copies
    note = f"{events} events of {backups} backups"
    goal = Goal("value", ">=", 10_000)
    return [Row(ID, "rebuild, events/s", ours, "asyncpg COPY of the same rows", baseline, goal, note=note)]
