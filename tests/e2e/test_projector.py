"""The projector beside a rebuild in place, and what ``/readyz`` says about its position.

A rebuild's reset moves the checkpoint back to 0 under a live archiver. The interleaving that used to lose
events is forced, step by step, through the real processes and PostgreSQL's own locks (no sleeps, no luck):

1. the test holds the checkpoint row ``FOR KEY SHARE``: the live archiver reads the checkpoint and the next
   page of the stream, then waits for the row at the start of its batch (``FOR UPDATE``);
2. the test holds the migration lock while the rebuild process starts, so its NATS connection (through a
   proxy) is open before it can reset anything; the proxy then holds its traffic;
3. the rebuild resets the projection (checkpoint 0) and waits for the stream, held by the proxy;
4. the test lets the live archiver go: it now holds a page read for the old checkpoint, over checkpoint 0;
5. once that batch is committed, the rebuild's stream traffic is released and it replays.

The judges are independent of the archiver's code: the event log's sequences as NATS reports them, and the
rows of ``backup_events`` counted in PostgreSQL; then the tables against a rebuild from scratch.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest

from lc2backup.archiver.schema import MIGRATION_LOCK
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from tests.faults.harness import TOPOLOGY, EventLog, connect, eventually, rebuild_equals_live, settled
from tests.faults.proxy import TcpProxy
from tests.support import System, rebuild_projection

pytestmark = pytest.mark.e2e

WAITING_FOR_ROW = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND wait_event_type = 'Lock' AND query LIKE '%projection_checkpoint%FOR UPDATE%'"
)
LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND wait_event_type = 'Lock'"
)
WAITING_FOR_MIGRATION = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND wait_event = 'advisory'"
)


def sequence_problems(rows: Counter[int], first: int, last: int) -> list[str]:
    """What is wrong with ``rows`` (stream sequence -> rows holding it) against the stream's ``first..last``."""
    problems = [f"seq {seq} missing" for seq in range(first, last + 1) if rows[seq] == 0]
    problems += [f"seq {seq} held {n} times" for seq, n in sorted(rows.items()) if n > 1]
    problems += [f"seq {seq} is not in the stream" for seq in sorted(rows) if not first <= seq <= last]
    return problems


def test_sequence_check_detects_a_gap_a_double_and_a_stranger() -> None:
    """Positive control of the judge below: each kind of damage is reported."""
    whole = Counter(range(1, 11))
    assert sequence_problems(whole, 1, 10) == []
    assert sequence_problems(whole - Counter([4]), 1, 10) == ["seq 4 missing"]
    assert sequence_problems(whole + Counter([7]), 1, 10) == ["seq 7 held 2 times"]
    assert sequence_problems(whole + Counter([11]), 1, 10) == ["seq 11 is not in the stream"]


async def _stream_bounds(log: EventLog) -> tuple[int, int]:
    """(first, last) sequence of the event stream, from the NATS server; the stream never loses a message."""
    state = (await log.js.stream_info(TOPOLOGY.events_stream)).state
    assert state.messages == state.last_seq - state.first_seq + 1, "the event stream has a gap"
    return state.first_seq, state.last_seq


async def _rows_per_sequence(dsn: str) -> Counter[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT seq, count(*) AS n FROM backup_events GROUP BY seq")
        return Counter({int(r["seq"]): int(r["n"]) for r in rows})
    finally:
        await conn.close()


async def _stored_checkpoint(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT last_seq FROM projection_checkpoint"))


async def _terminal(log: EventLog, system: System, backup_ids: list[str]) -> None:
    async def all_ended() -> bool:
        states = [await log.state(b) for b in backup_ids]
        return all(s.terminal for s in states)

    await eventually(f"backups {backup_ids} end", all_ended, system, timeout=120)


async def _caught_up(log: EventLog, system: System, conn: asyncpg.Connection) -> int:
    """The live checkpoint reaches the stream's last sequence; returns it."""

    async def level() -> int | None:
        _, last = await _stream_bounds(log)
        return last if await _stored_checkpoint(conn) == last else None

    last: int = await eventually("the live projection reaches the end of the stream", level, system, timeout=60)
    return last


@pytest.mark.parametrize("replicas", [1], ids=["1-replica"])  # one archiver forced into the interleaving: a second
# would take the step instead (two archivers side by side run in every other 2-replica test)
@pytest.mark.timeout(300)
async def test_rebuild_in_place_beside_the_running_archiver_loses_nothing(
    system: System, s3: Any, buckets: tuple[str, str], unique: str
) -> None:
    source, destination = buckets
    await seed_document_library(s3, source, "", plan_document_library(40))
    assert system.services is not None
    log = EventLog(await connect(system))
    watch = await asyncpg.connect(system.projection_dsn)
    row_holder = await asyncpg.connect(system.projection_dsn)
    proxy = TcpProxy("127.0.0.1", system.nats.port).start()
    try:
        first = await log.request("first", system.spec(source, destination))
        await _terminal(log, system, [first])
        before = await _caught_up(log, system, watch)
        assert before > 0

        # 1. The live archiver reads the checkpoint and a page of the backups below, then waits for the row.
        hold_row = row_holder.transaction()
        await hold_row.start()
        await row_holder.fetchval("SELECT last_seq FROM projection_checkpoint FOR KEY SHARE")
        running = [
            await log.request(f"running-{i}", system.spec(source, destination, environment=f"e{i}")) for i in range(3)
        ]

        async def live_waits() -> bool:
            return bool(await watch.fetchval(WAITING_FOR_ROW) == 1)

        await eventually("the live archiver waits for the checkpoint row", live_waits, system, timeout=30)

        # 2. The rebuild connects to NATS (through the proxy), then waits for the migration lock.
        await watch.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        rebuild_env = {**system.services["archiver"].env, "LC2_NATS__URL": f"nats://127.0.0.1:{proxy.port}"}
        rebuilding = asyncio.create_task(rebuild_projection(rebuild_env, timeout=120))

        async def rebuild_waits() -> bool:
            return bool(await watch.fetchval(WAITING_FOR_MIGRATION) == 1)

        await eventually("the rebuild waits for the migration lock", rebuild_waits, system, timeout=30)
        proxy.hold()
        await watch.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

        # 3. Its reset commits: the checkpoint is back to 0, and the rebuild waits for the stream.
        async def reset_done() -> bool:
            return await _stored_checkpoint(watch) == 0

        await eventually("the rebuild's reset commits", reset_done, system, timeout=30)
        assert not rebuilding.done()

        # 4. The live archiver goes on with the page it read before the reset; 5. then the rebuild replays.
        await hold_row.commit()

        async def live_applied() -> bool:
            return await _stored_checkpoint(watch) > 0

        await eventually("the live archiver commits a batch", live_applied, system, timeout=30)
        proxy.release()
        done = await rebuilding
        assert "rebuilt the projection from" in done.stdout

        await _terminal(log, system, running)
        await settled(log, system)
        last = await _caught_up(log, system, watch)
        first_seq, last_seq = await _stream_bounds(log)
        assert last == last_seq and last > before

        problems = sequence_problems(await _rows_per_sequence(system.projection_dsn), first_seq, last_seq)
        assert problems == [], f"{len(problems)} problems: {problems[:20]}"
        compared = await rebuild_equals_live(system, f"r_{unique}")
        assert compared == 1 + len(running)
        print(f"rebuild beside the live archiver: {last_seq} events, {compared} backups, every sequence once")
    finally:
        proxy.release()
        proxy.drop()
        for conn in (row_holder, watch):
            await conn.close()
        await log.nc.close()


def _deadlocks(log_text: str, database_oid: int) -> list[str]:
    """The deadlocks PostgreSQL reported in ``log_text`` whose lock graph involves this database."""
    reports = log_text.split("ERROR:  deadlock detected")[1:]
    return [r[:600] for r in reports if f"of database {database_oid};" in "\n".join(r.splitlines()[:6])]


DEADLOCK_REPORT = """\
2026-12-05 08:10:20.726 UTC [11633] ERROR:  deadlock detected
2026-12-05 08:10:20.726 UTC [11633] DETAIL:  Process 11633 waits for AccessShareLock on relation 16403 of database \
16384; blocked by process 11650.
\tProcess 11650 waits for ShareLock on transaction 1201; blocked by process 11633.
\tProcess 11633: SELECT backup_id, state_doc FROM backups WHERE backup_id = ANY($1)
"""


def test_deadlock_check_finds_a_report_of_its_database_only() -> None:
    """Positive control of the judge below, on the server's own wording."""
    assert len(_deadlocks(DEADLOCK_REPORT, 16384)) == 1
    assert _deadlocks(DEADLOCK_REPORT, 16385) == []
    assert _deadlocks(DEADLOCK_REPORT.replace("deadlock detected", "canceling statement"), 16384) == []


@pytest.mark.parametrize("replicas", [1], ids=["1-replica"])  # one archiver forced into the interleaving: a second
# would take the step instead (two archivers side by side run in every other 2-replica test)
@pytest.mark.timeout(300)
async def test_rebuild_reset_and_a_live_batch_take_their_locks_in_one_order(
    system: System, s3: Any, buckets: tuple[str, str], unique: str
) -> None:
    """The reset waits to drop ``backups`` while a live batch starts: neither is chosen as a deadlock victim.

    Forced: the test holds ``backups`` (ACCESS SHARE) so the reset waits at its DROP; then a live batch starts
    and waits too; then the test lets go. The judge is PostgreSQL's own log of deadlocks in this database.
    """
    source, destination = buckets
    await seed_document_library(s3, source, "", plan_document_library(10))
    assert system.services is not None
    server_log = system.stack.postgres.log_path
    log_from = server_log.stat().st_size
    log = EventLog(await connect(system))
    watch = await asyncpg.connect(system.projection_dsn)
    table_holder = await asyncpg.connect(system.projection_dsn)
    try:
        oid = int(await watch.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()"))
        first = await log.request("first", system.spec(source, destination))
        await _terminal(log, system, [first])
        await _caught_up(log, system, watch)

        async def lock_waiters() -> int:
            return int(await watch.fetchval(LOCK_WAITERS))

        hold_table = table_holder.transaction()
        await hold_table.start()
        await table_holder.execute("LOCK TABLE backups IN ACCESS SHARE MODE")
        rebuilding = asyncio.create_task(rebuild_projection(system.services["archiver"].env, timeout=120))

        async def reset_waits() -> bool:
            return await lock_waiters() == 1

        await eventually("the rebuild's reset waits to drop the tables", reset_waits, system, timeout=30)
        running = await log.request("running", system.spec(source, destination, environment="e2"))

        async def both_wait() -> bool:
            return await lock_waiters() == 2

        await eventually("a live batch waits too", both_wait, system, timeout=30)
        await hold_table.commit()
        done = await rebuilding
        assert "rebuilt the projection from" in done.stdout

        await _terminal(log, system, [running])
        await settled(log, system)
        await _caught_up(log, system, watch)
        first_seq, last_seq = await _stream_bounds(log)
        problems = sequence_problems(await _rows_per_sequence(system.projection_dsn), first_seq, last_seq)
        assert problems == [], f"{len(problems)} problems: {problems[:20]}"
        with server_log.open(encoding="utf-8", errors="replace") as file:
            file.seek(log_from)
            deadlocks = _deadlocks(file.read(), oid)
        assert deadlocks == [], deadlocks
        assert await rebuild_equals_live(system, f"r_{unique}") == 2
    finally:
        for conn in (table_holder, watch):
            await conn.close()
        await log.nc.close()


async def _readiness(system: System) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=system.api, timeout=5) as client:
        resp = await client.get("/readyz")
        body: dict[str, Any] = resp.json()
        return resp.status_code, body


@pytest.mark.timeout(240)
async def test_readyz_after_a_restart_reports_the_stored_checkpoint_and_the_lag(
    system: System, s3: Any, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    await seed_document_library(s3, source, "", plan_document_library(10))
    assert system.services is not None
    archiver, *others = system.services.replicas_of("archiver")
    log = EventLog(await connect(system))
    watch = await asyncpg.connect(system.projection_dsn)
    try:
        first = await log.request("first", system.spec(source, destination))
        await _terminal(log, system, [first])
        stored = await _caught_up(log, system, watch)

        # The archiver is down while another backup runs: the stream goes on without the projection.
        for each in (archiver, *others):
            each.stop()
        second = await log.request("second", system.spec(source, destination, environment="e2"))
        await _terminal(log, system, [second])
        await settled(log, system)
        _, stream_last = await _stream_bounds(log)
        assert stream_last > stored and await _stored_checkpoint(watch) == stored

        # Restarted, it cannot move the checkpoint while the test holds the row: /readyz reports what is stored.
        async with watch.transaction():
            await watch.fetchval("SELECT last_seq FROM projection_checkpoint FOR KEY SHARE")
            archiver.spawn()  # on this thread: the child's death signal follows the thread that started it

            async def answers() -> tuple[int, dict[str, Any]]:
                return await _readiness(system)

            status, body = await eventually("the restarted archiver answers /readyz", answers, system, timeout=60)
            assert status == 503 and body["checks"]["projection"] is False, body
            assert body["projection"] == {
                "checkpoint": stored,
                "streamLastSequence": stream_last,
                "lag": stream_last - stored,
            }, json.dumps(body)

        archiver.wait_ready(60)
        assert await _caught_up(log, system, watch) == stream_last

        # Restarted again with nothing new to apply: the position is still the stored one, not 0.
        system.services.restart("archiver")
        status, body = await _readiness(system)
        assert status == 200, body
        assert body["projection"] == {"checkpoint": stream_last, "streamLastSequence": stream_last, "lag": 0}, body
        for other in others:
            system.services.restart(other.key)
    finally:
        await watch.close()
        await log.nc.close()
