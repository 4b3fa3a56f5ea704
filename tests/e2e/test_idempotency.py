"""Redelivery doubles nothing, and the projection rebuilt from the stream equals the live one."""

from __future__ import annotations

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
from tests.metadata_json import read_metadata_json
from tests.polling import eventually
from tests.support import System, rebuild_projection
from tests.versions import keep_every_version, rewritten, writes

pytestmark = pytest.mark.e2e

DURABLES = ("db-export", "doclib-transfer", "metadata")
INTAKE = "crd-gateway-intake"


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
    """Every service consumer exists and has processed and acknowledged everything; returns their ack floors."""

    async def settled() -> list[int]:
        infos = [await js.consumer_info(topology.events_stream, d) for d in DURABLES]  # NotFoundError: not yet
        busy = {i.name: (i.num_pending, i.num_ack_pending) for i in infos if i.num_pending or i.num_ack_pending}
        assert not busy, f"(pending, unacknowledged) per consumer: {busy}"
        return [i.ack_floor.stream_seq for i in infos]

    return await eventually(settled, timeout=60, what="the services' consumers settled", tolerate=(NotFoundError,))


async def _command_handled(js: Any, topology: Topology, sequence: int) -> None:
    """crd-gateway's intake has acknowledged the command stored at ``sequence`` (its ack floor passed it)."""

    async def handled() -> bool:
        info = await js.consumer_info(topology.commands_stream, INTAKE)
        assert info.ack_floor.stream_seq >= sequence, f"intake ack floor {info.ack_floor.stream_seq} < {sequence}"
        return True

    await eventually(handled, timeout=60, what=f"command {sequence} handled by crd-gateway")


async def _intake_outcomes(js: Any, topology: Topology) -> int:
    """How many BackupRequested and BackupRejected the event stream holds, counted by the server."""
    total = 0
    for event_type in ("BackupRequested", "BackupRejected"):
        info = await js.stream_info(topology.events_stream, subjects_filter=topology.event_subject("*", event_type))
        total += sum((info.state.subjects or {}).values())
    return total


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

        outcomes = await _intake_outcomes(js, topology)
        assert outcomes == 2
        before_objects = await _objects(s3, destination)
        before_events = await system.events(backup_id)
        before_tables = await _tables(system.projection_dsn)

        # Redeliver every event to every service: delete their durable consumers; each service notices and
        # recreates its consumer, which starts again from the first event.
        for durable in DURABLES:
            await js.delete_consumer(topology.events_stream, durable)
        # And send the same command again; wait until crd-gateway has handled it, and not as a dead letter.
        dead_before = (await js.stream_info(topology.dlq_stream)).state.messages
        resent = await js.publish(topology.request_subject, command)
        assert not resent.duplicate  # stored as a new command, not dropped by the stream's dedupe
        await _command_handled(js, topology, resent.seq)
        assert (await js.stream_info(topology.dlq_stream)).state.messages == dead_before
        assert await _intake_outcomes(js, topology) == outcomes  # the re-sent command recorded nothing
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

        # Positive control for the count above: a new command, handled the same way, is counted once.
        new = await js.publish(topology.request_subject, json.dumps({"requestId": "new", "spec": {}}).encode())
        await _command_handled(js, topology, new.seq)
        assert await _intake_outcomes(js, topology) == outcomes + 1

        # Positive control: a second copy of one object and a second metadata.json, made by the test directly
        # at the store with the same bytes, are caught by the same count.
        root = f"backups/{backup_id}/"
        copy = next(key for key in sorted(before_objects) if key.startswith(f"{root}documentlibrary/"))
        metadata = f"{root}metadata.json"
        original = copy.removeprefix(f"{root}documentlibrary/")
        await s3.copy_object(Bucket=destination, Key=copy, CopySource={"Bucket": source, "Key": original})
        body = await (await s3.get_object(Bucket=destination, Key=metadata))["Body"].read()
        assert read_metadata_json(body)["backupId"] == backup_id
        await s3.put_object(Bucket=destination, Key=metadata, Body=body)
        assert rewritten(await writes(s3, destination)) == {copy: 2, metadata: 2}
    finally:
        await nc.close()
