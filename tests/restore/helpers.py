"""What the tests of restores share: a backup to restore, and oracles that read the servers with their own
queries (psql, the S3 client), never through the restorer's code."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import asyncpg

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seeding import (
    LIFERAY_TABLES,
    DocumentLibraryLayout,
    liferay_database_sql,
    plan_document_library,
    seed_document_library,
)
from tests.support import System

# The decisions a restore that Succeeded records exactly once each, whatever crashed along the way
RESTORED_ONCE = (
    "RestoreRequested",
    "RestoreAdmitted",
    "RestoreValidated",
    "DatabaseRestoreStarted",
    "DatabaseRestoreCompleted",
    "DocumentLibraryRestoreStarted",
    "DocumentLibraryRestoreCompleted",
    "RestoreSucceeded",
)


def table_digests(stack: LocalStack, database: str) -> dict[str, str]:
    """Per Liferay table: row count and an md5 of its rows' text in order (psql, our oracle)."""
    out = {}
    for table in LIFERAY_TABLES:
        out[table] = stack.postgres.psql(
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(md5(t::text), ',' ORDER BY md5(t::text))), '')"
            f" FROM {table} t",
            database=database,
        ).strip()
    return out


async def objects_under(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key (without prefix) -> (size, md5 of the bytes), read back from the store."""
    found: dict[str, tuple[int, str]] = {}
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = await (await s3.get_object(Bucket=bucket, Key=obj["Key"]))["Body"].read()
            found[obj["Key"][len(prefix) :]] = (len(body), hashlib.md5(body).hexdigest())
    return found


async def backed_up(
    system: System, s3: Any, buckets: tuple[str, str], files: int = 60
) -> tuple[str, DocumentLibraryLayout]:
    source, destination = buckets
    conn = await asyncpg.connect(system.source_dsn)
    await conn.execute(liferay_database_sql(scale=1))
    await conn.close()
    layout = await seed_document_library(s3, source, "liferay/", plan_document_library(files))
    spec = system.spec(source, destination)
    spec["documentLibrary"]["sourcePrefix"] = "liferay"
    async with system.client() as client:
        resp = await client.post("/api/v1/backups", json=spec)
        assert resp.status_code == 202, resp.text
        backup_id: str = resp.json()["backupId"]
    doc = await system.wait_for(backup_id)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    return backup_id, layout


def databases_named(stack: LocalStack, pattern: str) -> list[str]:
    return stack.postgres.psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{pattern}'").split()
