"""SIGKILL services in the middle of a backup and start them again: it still succeeds, nothing doubled."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import asyncpg
import nats
import pytest

from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from tests.support import System
from tests.versions import keep_every_version, rewritten, writes

pytestmark = pytest.mark.e2e

BIG_TABLE = """
CREATE TABLE attachments (id int PRIMARY KEY, body text);
INSERT INTO attachments SELECT g, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 12) i)
FROM generate_series(1, 120000) g;
"""


@pytest.fixture
def system_extra_env() -> dict[str, str]:
    # zlib level 9 keeps the dump running long enough to be interrupted; small copy pool, same reason.
    return {"LC2_LOCAL__COMPRESS": "9", "LC2_LOCAL__COPY_WORKERS": "4"}


@pytest.mark.timeout(600)
async def test_sigkill_mid_dump_and_mid_copy(system: System, s3: Any, buckets: tuple[str, str]) -> None:
    source, destination = buckets
    await keep_every_version(s3, destination)  # so that the store itself counts every write
    layout = await seed_document_library(s3, source, "", plan_document_library(3000))
    conn = await asyncpg.connect(system.source_dsn)
    await conn.execute(BIG_TABLE)
    await conn.close()
    assert system.services is not None
    services = system.services
    async with system.client() as api:
        resp = await api.post("/api/v1/backups", json=system.spec(source, destination))
        backup_id = resp.json()["backupId"]

    # Watch the event log itself (not the projection) to kill at the right moment.
    killed: set[str] = set()
    nc = await nats.connect(system.nats.url)
    sub = await nc.subscribe(f"lc2.backup.evt.{backup_id}.*")
    try:
        async with asyncio.timeout(120):
            while killed != {"db-export", "doclib-transfer"}:
                msg = await sub.next_msg(timeout=60)
                envelope = json.loads(msg.data)
                kind, data = envelope["type"], envelope["data"]
                if kind == "DatabaseExportProgressed" and "db-export" not in killed:
                    services["db-export"].kill()
                    killed.add("db-export")
                    services["archiver"].kill()  # and the projection, mid-stream
                    services.restart("archiver")
                    services.restart("db-export")
                elif (
                    kind == "DocumentLibraryTransferProgressed"
                    and data["counters"]["objectsCopied"] > 0
                    and ("doclib-transfer" not in killed)
                ):
                    services["doclib-transfer"].kill()
                    killed.add("doclib-transfer")
                    services.restart("doclib-transfer")
                elif kind in ("DatabaseExportCompleted", "DocumentLibraryTransferCompleted", "BackupFailed"):
                    pytest.fail(f"{kind} before both services were interrupted ({killed}); make the work bigger")
    finally:
        await nc.close()

    doc = await system.wait_for(backup_id, timeout=180)
    assert doc["state"] == "Succeeded", json.dumps(doc["status"], indent=1)
    types = [e["type"] for e in await system.events(backup_id)]
    for once in (
        "BackupRequested",
        "DatabaseExportStarted",
        "DatabaseExportCompleted",
        "DocumentLibraryTransferStarted",
        "DocumentLibraryTransferCompleted",
        "BackupMetadataWritten",
        "BackupSucceeded",
    ):
        assert types.count(once) == 1, (once, types)

    status = doc["status"]
    export = status["database"]["export"]
    dump_key = export["location"].removeprefix(f"s3://{destination}/")
    dump = await (await s3.get_object(Bucket=destination, Key=dump_key))["Body"].read()
    assert hashlib.sha256(dump).hexdigest() == export["sha256"] and len(dump) == export["sizeBytes"]

    prefix = status["documentLibrary"]["transfer"]["destination"].removeprefix(f"s3://{destination}/")
    copied: list[str] = []
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=destination, Prefix=prefix):
        copied += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
    assert sorted(copied) == sorted(layout.regular)
    manifest_key = status["documentLibrary"]["transfer"]["manifestLocation"].removeprefix(f"s3://{destination}/")
    lines = (await (await s3.get_object(Bucket=destination, Key=manifest_key))["Body"].read()).decode().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(layout.regular)  # each object once

    # Counted by the store: the dump (its interrupted multipart upload never completed), its checksum, the
    # manifest and metadata.json written once each; the copy, interrupted once, redone at most once per object;
    # the dump's figures at most once per attempt at the dump.
    counts = await writes(s3, destination, f"backups/{backup_id}/")
    copies = [prefix + key for key in layout.regular]
    parts = [key for key in counts if key.startswith(f"{manifest_key.removesuffix('.jsonl')}.parts/")]
    assert parts, sorted(counts)  # the manifest was written in parts as the copy went, each part once
    written_once = [dump_key, f"{dump_key}.sha256", manifest_key, f"backups/{backup_id}/metadata.json", *parts]
    figures = dump_key.removesuffix(".dump") + ".figures.json"  # taken again with the dump that is redone
    assert set(counts) == {*copies, *written_once, figures}
    assert rewritten(counts, written_once) == {}
    assert rewritten(counts, [*copies, figures], at_most=2) == {}
