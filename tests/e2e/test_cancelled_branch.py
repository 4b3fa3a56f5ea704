"""A backup whose database branch fails stops its document-library branch mid-copy, says so everywhere, and
records what it left behind.

Before: with ``databaseName`` naming a database that does not exist, the backup failed, but the document
library was still copied in full and shown ``TransferInProgress`` for ever. Made deterministic with two
proxies: db-export reaches PostgreSQL through one that holds its connections until the copy is under way,
and doclib-transfer reaches the object store through one that is then held, so the copy cannot move on while
the failure and the cancellation happen. Objects are counted at the server (versions in a versioned bucket);
a second, successful backup through the same system is the positive control of that count.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lc2backup.cli.rendering import backup_view, make_console
from lc2backup.cli.watching import progress_line
from lc2backup.crd_gateway.projection import status_of
from lc2backup.devstack import LocalStack, NatsServer, ServiceProcess
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import BackupState
from tests.faults.proxy import TcpProxy
from tests.support import System

pytestmark = pytest.mark.e2e

FILES = 1500  # 1,200 regular objects: seconds of copying with two workers
WORKERS = 2


@dataclass
class Bed:
    system: System
    database: TcpProxy
    store: TcpProxy


@pytest.fixture
def bed(stack: LocalStack, nats_server: NatsServer, tmp_path: Path, unique: str, replicas: int) -> Iterator[Bed]:
    pg_port = int(stack.postgres.dsn_for("x").rsplit(":", 1)[1].split("/")[0])
    s3_host, s3_port = stack.s3.endpoint.removeprefix("http://").rsplit(":", 1)
    database, store = TcpProxy("127.0.0.1", pg_port), TcpProxy(s3_host, int(s3_port))
    database.start()
    store.start()
    system = System.local(
        stack,
        nats_server,
        tmp_path / "logs",
        unique,
        {
            "LC2_LOCAL__COPY_WORKERS": str(WORKERS),
            "LC2_LOCAL__PROGRESS_INTERVAL_SECONDS": "30",  # the progress report is not what stops the copy
            "LC2_LOCAL__CANCEL_CHECK_INTERVAL_SECONDS": "0.2",
        },
        replicas=replicas,
    )
    source_via_proxy = system.source_dsn.replace(f":{pg_port}/", f":{database.port}/")
    system.service_env = {
        "db-export": {"LC2_LOCAL__DATABASES": json.dumps({"liferay-test": source_via_proxy})},
        "doclib-transfer": {"LC2_S3__ENDPOINT_URL": store.url},
    }
    system.start()
    try:
        yield Bed(system, database, store)
    finally:
        database.release()
        store.release()
        system.stop()
        database.close()
        store.close()


async def _created(s3: Any, bucket: str, prefix: str) -> int:
    """Objects created under ``prefix``, counted by the server: every version in a versioned bucket."""
    count = 0
    async for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        count += len(page.get("Versions", []))
    return count


async def _eventually(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except AssertionError as exc:
            last = exc
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


async def _request(system: System, spec: dict[str, Any]) -> str:
    async with system.client() as client:
        resp = await client.post("/api/v1/backups", json=spec)
        assert resp.status_code == 202, resp.text
        backup_id: str = resp.json()["backupId"]
        return backup_id


def _copiers(system: System) -> list[ServiceProcess]:
    assert system.services is not None
    return system.services.replicas_of("doclib-transfer")


@pytest.mark.timeout(300)
async def test_a_failed_database_branch_cancels_the_copy_mid_way_and_records_what_was_left(
    bed: Bed, s3: Any, buckets: tuple[str, str]
) -> None:
    system, source, destination = bed.system, *buckets
    await s3.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
    layout = await seed_document_library(s3, source, "", plan_document_library(FILES))
    total = len(layout.regular)

    bed.database.hold()  # db-export's connection waits: the database branch fails only when released
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    backup_id = await _request(system, system.spec(source, destination, database={
        "type": "dump", "instanceId": "liferay-test", "databaseName": missing
    }))  # fmt: skip
    copies = f"backups/{backup_id}/documentlibrary/"

    async def copying() -> bool:
        return await _created(s3, destination, copies) >= 1

    await _eventually("the copy started", copying)
    bed.store.hold()  # the copy cannot move on from here
    at_hold = await _created(s3, destination, copies)
    bed.database.release()

    doc = await system.wait_for(backup_id, timeout=90)
    assert doc["state"] == "Failed", json.dumps(doc, indent=1)
    assert f"database {missing} does not exist" in doc["message"]
    assert (doc["databaseState"], doc["documentLibraryState"]) == ("Failed", "Cancelled"), json.dumps(doc, indent=1)
    logs = [svc.process.log_path for svc in _copiers(system) if svc.process is not None]

    async def stopped() -> bool:  # by whichever replica was copying
        return any(f"transfer of {backup_id} stopped" in log.read_text() for log in logs if log.exists())

    await _eventually("doclib-transfer stopped the copy while the store was held", stopped, timeout=30)
    bed.store.release()
    assert system.services is not None
    for copier in _copiers(system):
        copier.stop()  # nothing it could still send is left uncounted
    copied = await _created(s3, destination, copies)
    print(f"\ncancelled mid-copy: {copied} of {total} objects created at the server ({at_hold} when held)")
    assert 1 <= copied <= at_hold + WORKERS and copied < total // 4, (copied, at_hold, total)

    # Cancelled everywhere: the fold (API), the projection's columns, the CR status, `lc2backup get` / `watch`.
    status = doc["status"]
    dl = status["documentLibrary"]
    assert dl["transfer"]["status"] == "cancelled" and f"database {missing}" in dl["cancellation"]
    assert status["leftovers"] == [f"s3://{destination}/backups/{backup_id}/"]
    types = [e["type"] for e in await system.events(backup_id)]
    assert types[-2:] == ["DocumentLibraryTransferCancelled", "BackupFailed"], types
    assert "DocumentLibraryTransferCompleted" not in types
    cr = status_of(BackupState.model_validate(status), 1, {}, datetime.now(UTC))
    assert cr["documentLibrary"]["state"] == "Cancelled" and cr["leftovers"] == status["leftovers"]
    assert "document library Cancelled: cancelled after" in progress_line(doc)
    console = make_console()
    with console.capture() as captured:
        console.print(backup_view(doc))
    assert "Cancelled" in captured.get() and f"backups/{backup_id}/" in captured.get()
    metadata = await s3.list_objects_v2(Bucket=destination, Prefix=f"backups/{backup_id}/metadata.json")
    assert metadata.get("KeyCount", 0) == 0

    # Positive control: the same count sees a whole copy when nothing fails.
    for copier in _copiers(system):
        system.services.restart(copier.key)
    control = await _request(system, system.spec(source, destination, environment="control"))
    doc = await system.wait_for(control, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    assert await _created(s3, destination, f"backups/{control}/documentlibrary/") == total
