"""A local dump runs outside any delivery, under a lease: the delivery only polls it, with two replicas
polling one pg_dump runs, and after every db-export is killed no pg_dump process is left and the dump starts
again, once.

Made deterministic with a lock: the test holds an ACCESS EXCLUSIVE lock on the source's table, so pg_dump waits
inside PostgreSQL for as long as the test wants. Both effects are counted at the servers: the pg_dump sessions
in ``pg_stat_activity``, and db-export's deliveries by its consumer's sequence on the NATS server (a delivery
that ended is delivered again at the next poll; a delivery that ran the dump itself would keep the message).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import nats
import psutil
import pytest

from lc2backup.devstack import LocalStack
from lc2backup.eventing import Topology
from tests.support import System

pytestmark = pytest.mark.e2e


async def _dumps(conn: asyncpg.Connection, database: str) -> int:
    """pg_dump sessions on ``database``, as the server lists them."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND datname = $1", database
    )
    return count


def _dump_processes(database: str) -> int:
    """pg_dump processes of ``database`` on this machine. A backend whose client died while it waited for a lock
    stays in ``pg_stat_activity`` until the lock is granted, so a process left behind is counted here."""
    count = 0
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "pg_dump" and any(database in arg for arg in cmdline):
            count += 1
    return count


async def _deliveries(system: System) -> int:
    nc = await nats.connect(system.nats.url)
    try:
        info = await nc.jetstream().consumer_info(Topology().events_stream, "db-export")
        return int(info.delivered.consumer_seq or 0)
    finally:
        await nc.close()


@pytest.mark.timeout(180)
async def test_a_dump_runs_once_outside_the_delivery_while_every_replica_polls(
    system: System, stack: LocalStack, s3: Any, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    database = system.source_database
    admin = await asyncpg.connect(stack.postgres.dsn_for("postgres"))
    holder = await asyncpg.connect(system.source_dsn)
    try:
        await holder.execute("CREATE TABLE attachments (id int PRIMARY KEY, body text)")
        await holder.execute("INSERT INTO attachments SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        lock = holder.transaction()
        await lock.start()
        await holder.execute("LOCK TABLE attachments IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for it

        async with system.client() as client:
            resp = await client.post("/api/v1/backups", json=system.spec(source, destination))
            assert resp.status_code == 202, resp.text
            backup_id = resp.json()["backupId"]

        deadline = time.monotonic() + 60
        while await _dumps(admin, database) < 1:
            assert time.monotonic() < deadline, "pg_dump never started:\n" + system.logs()
            await asyncio.sleep(0.1)
        first = await _deliveries(system)
        most = 0
        seen = first
        until = time.monotonic() + 60
        while seen < first + 4:  # the poll interval is 1 s: four more deliveries while the dump waits
            assert time.monotonic() < until, f"db-export's delivery did not end while the dump ran ({first} → {seen})"
            most = max(most, await _dumps(admin, database))
            seen = await _deliveries(system)
            await asyncio.sleep(0.1)
        most = max(most, await _dumps(admin, database))
        print(f"\nwhile the dump waited: {seen - first} more deliveries to db-export, at most {most} pg_dump at once")
        assert most == 1

        # Positive control of the count: a second pg_dump of the same database is seen as two.
        second = await asyncio.create_subprocess_exec(
            "pg_dump",
            "--format=custom",
            f"--dbname={system.source_dsn}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while await _dumps(admin, database) < 2:
                assert time.monotonic() < deadline, "the control's pg_dump was not counted"
                await asyncio.sleep(0.1)
        finally:
            second.kill()
            await second.wait()

        # SIGKILL every db-export: their pg_dump dies with them (no process is left behind), and once the lease
        # runs out a restarted db-export starts the dump again, still one at a time.
        assert system.services is not None
        assert _dump_processes(database) == 1
        dumpers = system.services.replicas_of("db-export")
        for dumper in dumpers:
            dumper.kill()
        deadline = time.monotonic() + 30
        while _dump_processes(database) > 0:
            assert time.monotonic() < deadline, "a killed db-export left its pg_dump running"
            await asyncio.sleep(0.1)
        for dumper in dumpers:
            system.services.restart(dumper.key)
        deadline = time.monotonic() + 60
        while (now := _dump_processes(database)) < 1:
            assert time.monotonic() < deadline, "the dump was not started again:\n" + system.logs()
            await asyncio.sleep(0.1)
        for _ in range(30):  # three seconds more of polls by every replica: still one
            now = max(now, _dump_processes(database))
            await asyncio.sleep(0.1)
        assert now == 1, f"{now} pg_dump processes after the take-over"

        await lock.rollback()
        doc = await system.wait_for(backup_id, timeout=90)
        assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
        types = [e["type"] for e in await system.events(backup_id)]
        assert types.count("DatabaseExportCompleted") == 1, types
    finally:
        await holder.close()
        await admin.close()
