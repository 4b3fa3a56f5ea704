"""Redelivery doubles nothing, and the projection rebuilt from the stream equals the live one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import nats
import pytest
from nats.js.errors import NotFoundError

from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import backup_id_for_request
from lc2backup.eventing import Topology
from lc2backup.metadata.handlers import TRIGGERS
from tests.support import System, rebuild_projection
from tests.versions import keep_every_version, rewritten, writes

pytestmark = pytest.mark.e2e

DURABLES = ("db-export", "doclib-transfer", "metadata")


async def _objects(s3: Any, bucket: str) -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = (obj["ETag"], obj["LastModified"])
    return found


async def _tables(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            "backups": [tuple(r) for r in await conn.fetch("SELECT * FROM backups ORDER BY backup_id")],
            "backup_events": [tuple(r) for r in await conn.fetch("SELECT * FROM backup_events ORDER BY seq")],
            "checkpoint": [tuple(r) for r in await conn.fetch("SELECT * FROM projection_checkpoint")],
        }
    finally:
        await conn.close()


async def _settled(js: Any, topology: Topology) -> list[int]:
    """Every service consumer exists and has processed and acknowledged everything; returns delivered counts."""
    async with asyncio.timeout(60):
        while True:
            try:
                infos = [await js.consumer_info(topology.events_stream, d) for d in DURABLES]
            except NotFoundError:
                infos = []
            if infos and all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos):
                return [i.ack_floor.stream_seq for i in infos]
            await asyncio.sleep(0.2)


async def test_redelivered_events_and_commands_double_nothing_and_rebuild_is_identical(
    system: System, s3: Any, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    await keep_every_version(s3, destination)  # so that the store itself counts every write
    await seed_document_library(s3, source, "", plan_document_library(60))
    conn = await asyncpg.connect(system.source_dsn)
    await conn.execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) "
        "FROM generate_series(1, 5000) g"
    )
    await conn.close()
    topology = Topology()
    nc = await nats.connect(system.nats.url)
    js = nc.jetstream()
    try:
        command = json.dumps({"requestId": "once", "spec": system.spec(source, destination)}).encode()
        await js.publish(topology.request_subject, command)
        backup_id = backup_id_for_request("once")
        first = await system.wait_for(backup_id)
        assert first["state"] == "Succeeded"
        # A second, unrelated backup that fails, so the rebuild covers more than one shape.
        bad = system.spec(source, destination, database={"type": "dump", "instanceId": "not-configured"})
        await js.publish(topology.request_subject, json.dumps({"requestId": "fails", "spec": bad}).encode())
        failed = await system.wait_for(backup_id_for_request("fails"))
        assert failed["state"] == "Failed" and "not-configured" in failed["message"]
        await _settled(js, topology)

        before_objects = await _objects(s3, destination)
        before_events = await system.events(backup_id)
        before_tables = await _tables(system.projection_dsn)

        # Redeliver every event to every service: delete their durable consumers; each service notices and
        # recreates its consumer, which starts again from the first event.
        for durable in DURABLES:
            await js.delete_consumer(topology.events_stream, durable)
        # And send the same command again.
        await js.publish(topology.request_subject, command)
        redelivered = await _settled(js, topology)
        # Every event each service acts on went through it again: its new consumer is past the last of them.
        wanted = {"db-export": {"BackupAdmitted"}, "doclib-transfer": {"BackupAdmitted"}, "metadata": set(TRIGGERS)}
        history = [e for b in (backup_id, backup_id_for_request("fails")) for e in await system.events(b)]
        expected = [max(e["seq"] for e in history if e["type"] in wanted[d]) for d in DURABLES]
        assert redelivered == expected

        assert await system.events(backup_id) == before_events  # no new event for the backup
        assert await _objects(s3, destination) == before_objects  # one dump, one copy set, one metadata.json
        # ... each written once, as counted by the store: a rewrite with the same bytes would be a second version
        assert rewritten(await writes(s3, destination)) == {}
        assert await _tables(system.projection_dsn) == before_tables  # one projection row per backup

        # Rebuild: drop the projection and replay the stream; the tables come back identical.
        done = await rebuild_projection(system.env, timeout=120)
        assert "rebuilt the projection from" in done.stdout
        assert await _tables(system.projection_dsn) == before_tables

        # Positive control: a second copy of one object and a second metadata.json, made by the test directly
        # at the store with the same bytes, are caught by the same count.
        root = f"backups/{backup_id}/"
        copy = next(key for key in sorted(before_objects) if key.startswith(f"{root}documentlibrary/"))
        metadata = f"{root}metadata.json"
        original = copy.removeprefix(f"{root}documentlibrary/")
        await s3.copy_object(Bucket=destination, Key=copy, CopySource={"Bucket": source, "Key": original})
        body = await (await s3.get_object(Bucket=destination, Key=metadata))["Body"].read()
        await s3.put_object(Bucket=destination, Key=metadata, Body=body)
        assert rewritten(await writes(s3, destination)) == {copy: 2, metadata: 2}
    finally:
        await nc.close()
