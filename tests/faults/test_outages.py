"""Infrastructure outages in the middle of backups, each as long as the README promises (30 s), and the object
store gone for longer than the deadline.

The four scenarios run at once, each on servers of its own (its own nats-server and five services, its own
projection database, for PostgreSQL its own cluster, for the object store its own proxies in front of
SeaweedFS), so the suite waits for the longest outage, not for their sum.

- nats-server is SIGKILLed mid-backup and started again 30 s later on the same port and store
  (``sync_interval: always``, as deployed): every event acknowledged before the kill is still there, byte for
  byte; the services reconnect by themselves (none is restarted) and the backup finishes, each effect once.
- PostgreSQL is stopped for 30 s: the archiver pauses and says so on ``/readyz`` (503, ``postgres: false``)
  while backups go on in the event log; when PostgreSQL is back it catches up and the projection equals the
  fold of the log. Nothing is lost, because the projection acknowledges nothing: it reads from its checkpoint.
- The object store is unreachable for 30 s in the middle of the copy (a proxy in front of SeaweedFS,
  dropped): the work is retried and the backup succeeds.
- The object store is unreachable for longer than the configured deadline: the backup fails with a reason that
  says so, whether the branches cannot start or only metadata.json cannot be written; nothing stays in progress.

An outage's length is measured from the moment the server is gone until the moment it is started again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from lc2backup.devstack import LocalStack, NatsServer, PostgresServer
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
from tests.versions import keep_every_version

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

OUTAGE = 30.0  # seconds, as the README promises
SOURCE_TABLE = """
CREATE TABLE attachments (id int PRIMARY KEY, body text);
INSERT INTO attachments SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
FROM generate_series(1, 150000) g;
"""
DEADLINE_HOURS = 0.005  # 18 s: a branch still not done after this fails the backup (metadata.json: half of it)
STORE_CLIENT = {"LC2_S3__MAX_ATTEMPTS": "2", "LC2_S3__CONNECT_TIMEOUT": "1", "LC2_S3__READ_TIMEOUT": "5"}


@dataclass
class Beds:
    nats: System  # its nats-server fsyncs before every acknowledgement, as deployed
    postgres: tuple[System, PostgresServer]  # the projection on a cluster of its own
    store: tuple[System, TcpProxy]  # every service reaches the store through the proxy
    deadline: tuple[System, TcpProxy, TcpProxy]  # (the workers' way to the store, metadata's way to it)
    unique: str


def _proxy(stack: LocalStack) -> TcpProxy:
    endpoint = urlsplit(stack.s3.endpoint)
    assert endpoint.hostname is not None and endpoint.port is not None
    return TcpProxy(endpoint.hostname, endpoint.port).start()


@pytest.fixture
def beds(stack: LocalStack, tmp_path: Path, unique: str) -> Iterator[Beds]:
    """Four systems, started one after the other on this (long-lived) thread: a server dies with the thread
    that started it, and the scenarios start theirs again from here too."""
    with ExitStack() as stack_of:

        def nats(name: str, **kwargs: Any) -> NatsServer:
            server = NatsServer(tmp_path / name, **kwargs)
            server.start()
            stack_of.callback(server.stop)
            return server

        def running(system: System) -> System:
            system.start()
            stack_of.callback(system.stop)
            return system

        def proxy() -> TcpProxy:
            made = _proxy(stack)
            stack_of.callback(made.close)
            return made

        def local(name: str, nats_server: NatsServer, extra: dict[str, str], **kwargs: Any) -> System:
            return System.local(stack, nats_server, tmp_path / name / "logs", f"{unique}{name[0]}", extra, **kwargs)

        # zlib level 9 and two copy workers: the dump and the copy are still running when the server dies
        slow = {"LC2_LOCAL__COMPRESS": "9", "LC2_LOCAL__COPY_WORKERS": "2"}
        on_nats = local("nats", nats("nats-n", sync_always=True), slow)

        cluster = PostgresServer(tmp_path / "pg")
        cluster.start()
        stack_of.callback(cluster.stop)
        on_postgres = local("postgres", nats("nats-p"), {"LC2_LOCAL__MODE": "instant"})
        projection = cluster.create_database("projection")
        on_postgres = dataclasses.replace(
            on_postgres, env={**on_postgres.env, "LC2_POSTGRES__DSN": projection}, projection_dsn=projection
        )

        store = proxy()
        store_env = {
            "LC2_S3__ENDPOINT_URL": store.url,
            "LC2_LOCAL__COPY_WORKERS": "4",
            "LC2_LOCAL__PROGRESS_INTERVAL_SECONDS": "0.2",
            **STORE_CLIENT,
        }
        on_store = local("store", nats("nats-s"), store_env)

        workers, metadata = proxy(), proxy()
        deadline_env = {
            "LC2_S3__ENDPOINT_URL": workers.url,
            "LC2_DEADLINE_HOURS": str(DEADLINE_HOURS),
            "LC2_LOCAL__COPY_WORKERS": "4",
            "LC2_LOCAL__PROGRESS_INTERVAL_SECONDS": "0.2",
            **STORE_CLIENT,
        }
        metadata_env = {"LC2_S3__ENDPOINT_URL": metadata.url, "LC2_DEADLINE_HOURS": str(DEADLINE_HOURS / 2)}
        on_deadline = local("deadline", nats("nats-d"), deadline_env, service_env={"metadata": metadata_env})

        for system in (on_nats, on_postgres, on_store, on_deadline):
            running(system)
        yield Beds(on_nats, (on_postgres, cluster), (on_store, store), (on_deadline, workers, metadata), unique)


@pytest.mark.timeout(420)
async def test_nats_postgres_and_the_object_store_each_down_for_30_seconds_and_past_the_deadline(
    beds: Beds, s3: Any
) -> None:
    scenarios: dict[str, Awaitable[None]] = {
        "nats": _nats_down(beds.nats, s3, beds.unique),
        "postgres": _postgres_down(*beds.postgres, s3, beds.unique),
        "object store": _store_down(*beds.store, s3, beds.unique),
        "object store past the deadline": _store_down_past_the_deadline(*beds.deadline, s3, beds.unique),
    }
    results = await asyncio.gather(*scenarios.values(), return_exceptions=True)
    failed: dict[str, Exception] = {}
    for name, result in zip(scenarios, results, strict=True):
        if isinstance(result, Exception):
            failed[name] = result
        elif isinstance(result, BaseException):  # cancelled, interrupted: not a scenario's verdict
            raise result
    if failed:
        raise ExceptionGroup(f"outage scenarios failed: {', '.join(failed)}", list(failed.values()))


async def _buckets(s3: Any, unique: str, name: str) -> tuple[str, str]:
    source, destination = f"src-{unique}-{name}", f"dst-{unique}-{name}"
    await s3.create_bucket(Bucket=source)
    await s3.create_bucket(Bucket=destination)
    await keep_every_version(s3, destination)  # so that the store itself counts every write
    return source, destination


async def _pids(system: System) -> dict[str, int | None]:
    assert system.services is not None
    return {name: svc.pid for name, svc in system.services.services.items()}


async def _stored(log: EventLog) -> list[tuple[int, str, bytes]]:
    return [(m.sequence, m.subject, m.data) for m in await log.store.reader.read_all(TOPOLOGY.all_events)]


async def _hold(seconds: float, since: float) -> None:
    """Wait until ``seconds`` have passed since ``since`` (however long the loop was busy meanwhile)."""
    while (left := seconds - (time.monotonic() - since)) > 0:
        await asyncio.sleep(min(left, 2.0))


async def _nats_down(system: System, s3: Any, unique: str) -> None:
    source, destination = await _buckets(s3, unique, "n")
    layout = await seed_document_library(s3, source, "", plan_document_library(300))
    conn = await asyncpg.connect(system.source_dsn)
    try:
        await conn.execute(SOURCE_TABLE)
    finally:
        await conn.close()
    before_pids = await _pids(system)
    log = EventLog(await connect(system))
    try:
        backup_id = backup_id_for_request("nats-outage")
        watch = await log.nc.subscribe(f"{TOPOLOGY.prefix}.evt.{backup_id}.*")
        await log.request("nats-outage", system.spec(source, destination))
        async with asyncio.timeout(120):  # kill the server right after the copy reported its first objects
            while True:
                envelope = json.loads((await watch.next_msg(timeout=120)).data)
                progressed = envelope["type"] == "DocumentLibraryTransferProgressed"
                if progressed and envelope["data"]["counters"]["objectsCopied"] > 0:
                    break
        acknowledged = await _stored(log)
        system.nats.kill()
        down = time.monotonic()
        assert "BackupSucceeded" not in {json.loads(m[2])["type"] for m in acknowledged}, "too fast: make it bigger"
        await _hold(OUTAGE, down)
        system.nats.start()  # on this thread: a server dies with the thread that started it (PDEATHSIG)
        seconds = time.monotonic() - down

        state = await wait_terminal(log, backup_id, system, timeout=240)
        assert state.state == "Succeeded", state.message
        after = await _stored(log)
        assert after[: len(acknowledged)] == acknowledged, "an acknowledged event changed or vanished"
        history = await log.history(backup_id)
        checks.check_events_once(history, checks.SUCCEEDED_ONCE)
        await checks.check_dump_once(s3, state)
        # the copy that could not report is redone once NATS is back: each object at most twice
        await checks.check_copy_set(s3, state, layout.regular, await checks.listing(s3, source, ""), copies=2)
        await checks.check_metadata_once(s3, state, history)
        await settled(log, system)
        await projection_matches_the_log(log, system, [backup_id])
    finally:
        await log.close()
        await log.nc.close()
    assert await _pids(system) == before_pids, "a service had to be restarted instead of reconnecting"
    assert system.services is not None
    assert all(svc.process is not None and svc.process.alive() for svc in system.services.services.values())
    FIGURES.outage("nats", seconds, "mid-backup (SIGKILLed; the backup succeeded, no service restarted)")


async def _readyz(system: System) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=system.api, timeout=5) as client:
        resp = await client.get("/readyz")
        return resp.status_code, resp.json()


async def _postgres_down(system: System, cluster: PostgresServer, s3: Any, unique: str) -> None:
    source, destination = await _buckets(s3, unique, "p")
    log = EventLog(await connect(system))
    try:
        spec = system.spec(source, destination)
        before = [await log.request(f"before-{i}", spec) for i in range(3)]
        for backup_id in before:
            assert (await wait_terminal(log, backup_id, system)).state == "Succeeded"
        await projection_matches_the_log(log, system, before)

        await asyncio.to_thread(cluster.stop)
        down = time.monotonic()
        try:

            async def not_ready() -> dict[str, Any] | None:
                status, body = await _readyz(system)
                return body if status == 503 else None

            body = await eventually("/readyz says not ready", not_ready, system, timeout=OUTAGE)
            assert body["checks"]["postgres"] is False
            during = [await log.request(f"during-{i}", system.spec(source, destination, environment=f"e{i}"))
                      for i in range(5)]  # fmt: skip
            for backup_id in during:  # the event log goes on without the projection
                assert (await wait_terminal(log, backup_id, system)).state == "Succeeded"
            while (left := OUTAGE - (time.monotonic() - down)) > 0:
                status, body = await _readyz(system)
                assert status == 503 and body["checks"]["postgres"] is False, body
                await asyncio.sleep(min(left, 2.0))
        finally:
            cluster.start()  # on this thread, as above
        seconds = time.monotonic() - down

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
        FIGURES.outage("postgres", seconds, "under the archiver (it paused, then caught up)")
    finally:
        await log.close()
        await log.nc.close()


async def _store_down(system: System, proxy: TcpProxy, s3: Any, unique: str) -> None:
    source, destination = await _buckets(s3, unique, "s")
    layout = await seed_document_library(s3, source, "", plan_document_library(300))
    log = EventLog(await connect(system))
    try:
        backup_id = backup_id_for_request("store-outage")
        watch = await log.nc.subscribe(f"{TOPOLOGY.prefix}.evt.{backup_id}.*")
        await log.request("store-outage", system.spec(source, destination))
        async with asyncio.timeout(120):  # the store goes away right after the copy reported its first objects
            while True:
                envelope = json.loads((await watch.next_msg(timeout=120)).data)
                progressed = envelope["type"] == "DocumentLibraryTransferProgressed"
                if progressed and envelope["data"]["counters"]["objectsCopied"] > 0:
                    break
        await watch.unsubscribe()
        try:
            proxy.drop()
            down = time.monotonic()
            await _hold(OUTAGE, down)
            interrupted = await log.state(backup_id)
        finally:
            proxy.restore()
        seconds = time.monotonic() - down
        assert interrupted.document_library.state == "TransferInProgress", "the copy was not interrupted"

        state = await wait_terminal(log, backup_id, system, timeout=180)
        assert state.state == "Succeeded", state.message
        history = await log.history(backup_id)
        checks.check_events_once(history, checks.SUCCEEDED_ONCE)
        # a copy cut off by the outage is retried whole: each object written at least once, not bounded
        await checks.check_copy_set(s3, state, layout.regular, await checks.listing(s3, source, ""), copies=None)
        await checks.check_metadata_once(s3, state, history)
        await settled(log, system)
        await projection_matches_the_log(log, system, [backup_id])
        FIGURES.outage("object store", seconds, "mid-copy (retried; the backup succeeded)")
    finally:
        await log.close()
        await log.nc.close()


async def _store_down_past_the_deadline(
    system: System, workers: TcpProxy, metadata: TcpProxy, s3: Any, unique: str
) -> None:
    source, destination = await _buckets(s3, unique, "d")
    await seed_document_library(s3, source, "", plan_document_library(300))
    log = EventLog(await connect(system))
    try:
        # 1. Only metadata.json cannot be written, for longer than the deadline: the backup fails, saying why.
        metadata.drop()
        down = time.monotonic()
        unwritable = await log.request("metadata-unwritable", system.spec(source, destination, environment="meta"))
        state = await wait_terminal(log, unwritable, system, timeout=120)
        metadata.restore()
        seconds = time.monotonic() - down
        assert state.state == "Failed" and state.failed_branch == "metadata", state.message
        assert "cannot write metadata.json within" in (state.message or "")
        assert "unreachable" in (state.message or "")
        assert state.database.state == "Completed" and state.document_library.state == "Completed"
        FIGURES.outage("object store", seconds, "for metadata only, past its 9 s deadline (Failed)")

        # 2. The store is down from the start, longer than the deadline: the branches cannot even start.
        workers.drop()
        down = time.monotonic()
        unreachable = await log.request("store-down", system.spec(source, destination, environment="down"))
        state = await wait_terminal(log, unreachable, system, timeout=120)
        workers.restore()
        seconds = time.monotonic() - down
        assert state.state == "Failed", state.message
        assert "within 0:00:18" in (state.message or ""), state.message
        FIGURES.outage("object store", seconds, "from admission, past the 18 s deadline (Failed)")
        await settled(log, system)
        await projection_matches_the_log(log, system, [unwritable, unreachable])
    finally:
        workers.restore()
        metadata.restore()
        await log.close()
        await log.nc.close()
