"""A whole backup on the local provider, through the five services as real processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import asyncpg
import pytest

from lc2backup.devstack.postgres import pg_bindir
from lc2backup.devstack.seeding import (
    LIFERAY_TABLES,
    liferay_database_sql,
    plan_document_library,
    seed_document_library,
)
from tests.metadata_json import read_metadata_json
from tests.support import System

pytestmark = pytest.mark.e2e


async def _row_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in LIFERAY_TABLES}
    finally:
        await conn.close()


async def _request(system: System, spec: dict[str, Any]) -> str:
    async with system.client() as client:
        resp = await client.post("/api/v1/backups", json=spec)
        assert resp.status_code == 202, resp.text
        backup_id: str = resp.json()["backupId"]
        return backup_id


async def test_backup_restores_and_copies_everything_but_generated_files(
    system: System, s3: Any, buckets: tuple[str, str], replicas: int
) -> None:
    source, destination = buckets
    assert system.services is not None  # the replica count is real: that many processes of each service serve
    for name in system.names:
        assert [svc.process is not None and svc.process.alive() for svc in system.services.replicas_of(name)] == [
            True
        ] * replicas, name
    conn = await asyncpg.connect(system.source_dsn)
    await conn.execute(liferay_database_sql(scale=1))
    await conn.close()
    layout = await seed_document_library(s3, source, "", plan_document_library(120, large_every=40))

    backup_id = await _request(system, system.spec(source, destination))
    doc = await system.wait_for(backup_id)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    status = doc["status"]

    # The dump restores into a fresh database with the same row counts per table.
    export = status["database"]["export"]
    key = export["location"].removeprefix(f"s3://{destination}/")
    dump = await (await s3.get_object(Bucket=destination, Key=key))["Body"].read()
    assert len(dump) == export["sizeBytes"]
    restored = system.stack.postgres.create_database(f"restored_{backup_id[:8]}")
    done = subprocess.run(
        [str(pg_bindir() / "pg_restore"), "--no-owner", f"--dbname={restored}"],
        input=dump,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert await _row_counts(restored) == await _row_counts(system.source_dsn)

    # Every regular object is in the backup with the same size and ETag; generated files are absent.
    prefix = status["documentLibrary"]["transfer"]["destination"].removeprefix(f"s3://{destination}/")
    copied: dict[str, tuple[int, str]] = {}
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=destination, Prefix=prefix):
        for obj in page.get("Contents", []):
            copied[obj["Key"][len(prefix) :]] = (obj["Size"], obj["ETag"])
    assert set(copied) == set(layout.regular)
    for rel in layout.regular:
        head = await s3.head_object(Bucket=source, Key=rel)
        assert copied[rel] == (head["ContentLength"], head["ETag"])
    counters = status["documentLibrary"]["counters"]
    assert counters["objectsCopied"] == len(layout.regular)
    assert counters["objectsExcluded"] == len(layout.generated)
    assert doc["objectsExcluded"] == len(layout.generated)

    # metadata.json describes the backup.
    meta_key = doc["metadataLocation"].removeprefix(f"s3://{destination}/")
    meta = read_metadata_json(await (await s3.get_object(Bucket=destination, Key=meta_key))["Body"].read())
    assert meta["backupId"] == backup_id
    assert meta["database"]["export"]["sha256"] == export["sha256"]
    assert meta["documentLibrary"]["objectsExcluded"] == len(layout.generated)

    types = [e["type"] for e in await system.events(backup_id)]
    assert types[0] == "BackupRequested" and types[-1] == "BackupSucceeded"
    assert types.count("BackupSucceeded") == 1 and types.count("BackupMetadataWritten") == 1
    await asyncio.sleep(0)
