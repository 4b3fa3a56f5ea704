"""Infrastructure outages in the middle of backups: NATS, PostgreSQL, the object store.

- nats-server is SIGKILLed mid-backup and started again on the same port and store (``sync_interval:
  always``, as deployed): every event acknowledged before the kill is still there, byte for byte; the
  services reconnect by themselves (none is restarted) and the backup finishes, each effect once.
- PostgreSQL is stopped for 30 s: the archiver pauses and says so on ``/readyz`` (503, ``postgres: false``)
  while backups go on in the event log; when PostgreSQL is back it catches up and the projection equals the
  fold of the log. Nothing is lost, because the projection acknowledges nothing: it reads from its checkpoint.
- The object store is unreachable (a proxy in front of SeaweedFS, dropped): a short outage is retried and the
  backup succeeds; an outage longer than the configured deadline fails the backup with a reason that says
  so, whether the branches cannot start or only metadata.json cannot be written; nothing stays in progress.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import backup_id_for_request
from tests.faults import checks
from tests.faults.figures import FIGURES
from tests.faults.harness import (
    TOPOLOGY,
    EventLog,
    connect,
    eventually,
    projection_matches_the_log,
    settled,
    wait_terminal,
)
from tests.faults.proxy import TcpProxy
from tests.support import System

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

SOURCE_TABLE = """
CREATE TABLE attachments (id int PRIMARY KEY, body text);
INSERT INTO attachments SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
FROM generate_series(1, 150000) g;
"""
POSTGRES_OUTAGE = 30.0
DEADLINE_HOURS = 0.005  # 18 s: a branch still not done after this fails the backup (metadata.json: half of it)


@pytest.fixture
def system_extra_env() -> dict[str, str]:
    # zlib level 9 and two copy workers: the dump and the copy are still running when the server dies
    return {"LC2_LOCAL__COMPRESS": "9", "LC2_LOCAL__COPY_WORKERS": "2"}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """As deployed: fsync before every acknowledgement."""
    server = NatsServer(tmp_path / "nats", sync_always=True)
    server.start()
    yield server
    server.stop()


async def _pids(system: System) -> dict[str, int | None]:
    assert system.services is not None
    return {name: svc.pid for name, svc in system.services.services.items()}


async def _stored(log: EventLog) -> list[tuple[int, str, bytes]]:
    return [(m.sequence, m.subject, m.data) for m in await log.store.reader.read_all(TOPOLOGY.all_events)]


@pytest.mark.timeout(300)
async def test_nats_killed_mid_backup_keeps_every_acknowledged_event_and_the_services_finish(
    system: System, s3: Any, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    await s3.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
    layout = await seed_document_library(s3, source, "", plan_document_library(300))
    conn = await asyncpg.connect(system.source_dsn)
    await conn.execute(SOURCE_TABLE)
    await conn.close()
    before_pids = await _pids(system)
    log = EventLog(await connect(system))
    try:
        backup_id = backup_id_for_request("nats-outage")
        watch = await log.nc.subscribe(f"{TOPOLOGY.prefix}.evt.{backup_id}.*")
        await log.request("nats-outage", system.spec(source, destination))
        async with asyncio.timeout(60):  # kill the server right after the copy reported its first objects
            while True:
                envelope = json.loads((await watch.next_msg(timeout=60)).data)
                progressed = envelope["type"] == "DocumentLibraryTransferProgressed"
                if progressed and envelope["data"]["counters"]["objectsCopied"] > 0:
                    break
        acknowledged = await _stored(log)
        system.nats.kill()
        assert "BackupSucceeded" not in {json.loads(m[2])["type"] for m in acknowledged}, "too fast: make it bigger"
        started = time.monotonic()
        await asyncio.sleep(3)  # the outage
        system.nats.start()  # on this thread: a server dies with the thread that started it (PDEATHSIG)
        FIGURES.outages["nats"] += 1
        FIGURES.outage_seconds["nats"] += time.monotonic() - started

        state = await wait_terminal(log, backup_id, system, timeout=180)
        assert state.state == "Succeeded", state.message
        after = await _stored(log)
        assert after[: len(acknowledged)] == acknowledged, "an acknowledged event changed or vanished"
        history = await log.history(backup_id)
        checks.check_events_once(history, checks.SUCCEEDED_ONCE)
        await checks.check_dump_once(s3, state)
        await checks.check_copy_set(s3, state, layout.regular, await checks.listing(s3, source, ""))
        await checks.check_metadata_once(s3, state, history)
        await settled(log, system)
        await projection_matches_the_log(log, system, [backup_id])
    finally:
        await log.close()
        await log.nc.close()
    assert await _pids(system) == before_pids, "a service had to be restarted instead of reconnecting"
    assert system.services is not None
    assert all(svc.process is not None and svc.process.alive() for svc in system.services.services.values())


async def _readyz(system: System) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=system.api, timeout=5) as client:
        resp = await client.get("/readyz")
        return resp.status_code, resp.json()


class TestPostgres:
    @pytest.fixture
    def system_extra_env(self) -> dict[str, str]:
        return {"LC2_LOCAL__MODE": "instant"}

    @pytest.mark.timeout(300)
    async def test_postgres_down_for_30_seconds_pauses_the_archiver_which_then_catches_up(
        self, system: System, stack: LocalStack, buckets: tuple[str, str]
    ) -> None:
        source, destination = buckets
        log = EventLog(await connect(system))
        try:
            spec = system.spec(source, destination)
            before = [await log.request(f"before-{i}", spec) for i in range(3)]
            for backup_id in before:
                assert (await wait_terminal(log, backup_id, system)).state == "Succeeded"
            await projection_matches_the_log(log, system, before)

            started = time.monotonic()
            await asyncio.to_thread(stack.postgres.stop)
            try:

                async def not_ready() -> dict[str, Any] | None:
                    status, body = await _readyz(system)
                    return body if status == 503 else None

                body = await eventually("/readyz says not ready", not_ready, system, timeout=30)
                assert body["checks"]["postgres"] is False
                during = [await log.request(f"during-{i}", system.spec(source, destination, environment=f"e{i}"))
                          for i in range(5)]  # fmt: skip
                for backup_id in during:  # the event log goes on without the projection
                    assert (await wait_terminal(log, backup_id, system)).state == "Succeeded"
                while (left := POSTGRES_OUTAGE - (time.monotonic() - started)) > 0:
                    status, body = await _readyz(system)
                    assert status == 503 and body["checks"]["postgres"] is False, body
                    await asyncio.sleep(min(left, 2.0))
            finally:
                stack.postgres.start()  # on this thread, as above: it must outlive the test
            FIGURES.outages["postgres"] += 1
            FIGURES.outage_seconds["postgres"] += time.monotonic() - started

            async def ready() -> bool:
                status, _ = await _readyz(system)
                return status == 200

            await eventually("/readyz ready again", ready, system, timeout=60)
            await projection_matches_the_log(log, system, [*before, *during])
            conn = await asyncpg.connect(system.projection_dsn)
            try:
                projected = await conn.fetchval("SELECT count(*) FROM backup_events")
                position = await conn.fetchval("SELECT last_seq FROM projection_checkpoint")
            finally:
                await conn.close()
            stored = await _stored(log)
            assert projected == len(stored) and position == stored[-1][0], "the projection lost or doubled events"
        finally:
            await log.close()
            await log.nc.close()


class TestObjectStore:
    @pytest.fixture
    def proxies(self, stack: LocalStack) -> Iterator[tuple[TcpProxy, TcpProxy]]:
        """(the workers' way to the store, metadata's way to it)."""
        endpoint = urlsplit(stack.s3.endpoint)
        assert endpoint.hostname is not None and endpoint.port is not None
        workers = TcpProxy(endpoint.hostname, endpoint.port).start()
        metadata = TcpProxy(endpoint.hostname, endpoint.port).start()
        yield workers, metadata
        workers.close()
        metadata.close()

    @pytest.fixture
    def system_extra_env(self) -> dict[str, str]:
        return {
            "LC2_DEADLINE_HOURS": str(DEADLINE_HOURS),
            "LC2_S3__MAX_ATTEMPTS": "2",
            "LC2_S3__CONNECT_TIMEOUT": "1",
            "LC2_S3__READ_TIMEOUT": "5",
            "LC2_LOCAL__COPY_WORKERS": "4",
        }

    @pytest.fixture
    def system(
        self,
        stack: LocalStack,
        nats_server: NatsServer,
        tmp_path: Path,
        unique: str,
        system_extra_env: dict[str, str],
        proxies: tuple[TcpProxy, TcpProxy],
    ) -> Iterator[System]:
        workers, metadata = proxies
        extra = {"LC2_LOCAL__PROGRESS_INTERVAL_SECONDS": "0.2", "LC2_S3__ENDPOINT_URL": workers.url, **system_extra_env}
        metadata_env = {"LC2_S3__ENDPOINT_URL": metadata.url, "LC2_DEADLINE_HOURS": str(DEADLINE_HOURS / 2)}
        system = System.local(stack, nats_server, tmp_path / "logs", unique, extra, {"metadata": metadata_env})
        system.start()
        yield system
        system.stop()

    @pytest.mark.timeout(300)
    async def test_the_object_store_unreachable_is_retried_and_past_the_deadline_fails_with_the_reason(
        self, system: System, s3: Any, buckets: tuple[str, str], proxies: tuple[TcpProxy, TcpProxy]
    ) -> None:
        workers, metadata = proxies
        source, destination = buckets
        layout = await seed_document_library(s3, source, "", plan_document_library(300))
        log = EventLog(await connect(system))
        try:
            # 1. A short outage in the middle of the work: retried, then the backup succeeds.
            short = backup_id_for_request("short-outage")
            watch = await log.nc.subscribe(f"{TOPOLOGY.prefix}.evt.{short}.*")
            await log.request("short-outage", system.spec(source, destination, environment="short"))
            async with asyncio.timeout(60):  # the store goes away right after the first progress report
                while not json.loads((await watch.next_msg(timeout=60)).data)["type"].endswith("Progressed"):
                    pass
            await watch.unsubscribe()
            workers.drop()
            await asyncio.sleep(5)
            workers.restore()
            FIGURES.outages["object store"] += 1
            FIGURES.outage_seconds["object store"] += 5
            state = await wait_terminal(log, short, system, timeout=120)
            assert state.state == "Succeeded", state.message
            await checks.check_copy_set(s3, state, layout.regular, await checks.listing(s3, source, ""))

            # 2. Only metadata.json cannot be written, for longer than the deadline: the backup fails, saying why.
            metadata.drop()
            started = time.monotonic()
            unwritable = await log.request("metadata-unwritable", system.spec(source, destination, environment="meta"))
            state = await wait_terminal(log, unwritable, system, timeout=120)
            metadata.restore()
            FIGURES.outages["object store"] += 1
            FIGURES.outage_seconds["object store"] += time.monotonic() - started
            assert state.state == "Failed" and state.failed_branch == "metadata", state.message
            assert "cannot write metadata.json within" in (state.message or "")
            assert "unreachable" in (state.message or "")
            assert state.database.state == "Completed" and state.document_library.state == "Completed"

            # 3. The store is down from the start, longer than the deadline: the branches cannot even start.
            workers.drop()
            started = time.monotonic()
            down = await log.request("store-down", system.spec(source, destination, environment="down"))
            state = await wait_terminal(log, down, system, timeout=120)
            workers.restore()
            FIGURES.outages["object store"] += 1
            FIGURES.outage_seconds["object store"] += time.monotonic() - started
            assert state.state == "Failed", state.message
            assert "within 0:00:18" in (state.message or ""), state.message
            await settled(log, system)
            await projection_matches_the_log(log, system, [short, unwritable, down])
        finally:
            workers.restore()
            metadata.restore()
            await log.close()
            await log.nc.close()
