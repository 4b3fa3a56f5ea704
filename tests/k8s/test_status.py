"""The status side against real NATS and the emulator, without the other services.

The projector runs under the real consumer runner on the event log, as in crd-gateway; events are appended
with the real event store. It must write only the CR the backup came from: a CR re-created under the same
name (a new uid) is another backup, and a deleted CR is simply skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from lc2backup.crd_gateway.handlers import IntakeHandler
from lc2backup.crd_gateway.kube import KubeApi, WatchEvent
from lc2backup.crd_gateway.reconciling import BackupRequests, Reconciler
from lc2backup.crd_gateway.recording import EventRecorder
from lc2backup.crd_gateway.status import BACKUPS, RESTORES, StatusProjector, StatusRouter
from lc2backup.domain import BackupState, backup_id_for_resource
from lc2backup.domain import events as ev
from lc2backup.eventing import Causation, ConsumerRunner, ConsumerSpec, DeadLetters, EventStore
from tests.k8s.conftest import Objects, eventually

pytestmark = pytest.mark.k8s

SPEC: dict[str, Any] = {
    "projectId": "retail",
    "environment": "prd",
    "provider": "aws",
    "database": {"type": "snapshot", "instanceId": "db"},
    "documentLibrary": {"sourceBucket": "src-bucket", "destinationBucket": "dst-bucket"},
}


@dataclass
class Projecting:
    status: StatusProjector[BackupState]
    runner: ConsumerRunner


@pytest.fixture
async def projecting(nc: NatsClient, store: EventStore, api: KubeApi) -> AsyncIterator[Projecting]:
    recorder = EventRecorder(api)
    status = StatusProjector(store, api, recorder, BACKUPS, retry_delay=0.2)
    router = StatusRouter(store, status, StatusProjector(store, api, recorder, RESTORES), retry_delay=0.2)
    topology = store.topology
    spec = ConsumerSpec(topology.events_stream, "crd-gateway-status", (topology.all_events,), ack_wait=5)
    runner = ConsumerRunner(nc, spec, router.on_event, dead_letters=DeadLetters(nc.jetstream(), topology, "test"))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    yield Projecting(status, runner)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert runner.stats.dead_lettered == 0 and runner.stats.failed == 0


async def test_only_the_cr_the_backup_came_from_is_written(
    projecting: Projecting, store: EventStore, objects: Objects
) -> None:
    reconciler = Reconciler(BackupRequests(IntakeHandler(store), projecting.status))
    old = await objects.create("nightly", SPEC)
    await reconciler.on_watch_event(WatchEvent("ADDED", old))
    old_backup = backup_id_for_resource(old["metadata"]["uid"])

    async def status_of(name: str) -> dict[str, Any]:
        return (await objects.get(name)).get("status") or {}

    await eventually(lambda: _has_event(objects, "nightly", "BackupCreated"), what="BackupCreated event")
    assert (await status_of("nightly"))["backupId"] == old_backup

    # Re-created under the same name: a new uid, a new backup, and the old backup's events leave it alone.
    await objects.delete("nightly")
    new = await objects.create("nightly", {**SPEC, "retentionDays": 7})
    await reconciler.on_watch_event(WatchEvent("ADDED", new))
    new_backup = backup_id_for_resource(new["metadata"]["uid"])
    before = await status_of("nightly")
    assert before["backupId"] == new_backup and before["state"] == "Pending"

    history = await store.load(old_backup)
    await store.append(
        old_backup,
        [ev.DatabaseSnapshotStarted(snapshot_id="snap-1", instance_id="db")],
        expected_version=history.version,
        causation=Causation("test"),
    )
    marker = await store.load(new_backup)
    await store.append(
        new_backup,
        [
            ev.DocumentLibraryTransferStarted(
                job_id="j", method="copy", source="s3://a/", destination="s3://b/", exclude_generated_files=True
            )
        ],
        expected_version=marker.version,
        causation=Causation("test"),
    )
    # events are delivered in stream order: once the new backup's transfer shows, the old event was handled
    await eventually(lambda: _state_is(objects, "nightly", "TransferInProgress"), what="the new backup's own progress")
    after = await status_of("nightly")
    assert after["backupId"] == new_backup and "snapshot" not in after["database"]

    # A deleted CR: its backup's events are acknowledged and skipped.
    await objects.delete("nightly")
    acked = projecting.runner.stats.acked
    latest = await store.load(new_backup)
    await store.append(
        new_backup,
        [ev.DatabaseSnapshotStarted(snapshot_id="snap-2", instance_id="db")],
        expected_version=latest.version,
        causation=Causation("test"),
    )
    await eventually(lambda: projecting.runner.stats.acked > acked, what="the event of the deleted CR acknowledged")


async def _has_event(objects: Objects, name: str, reason: str) -> bool:
    return reason in {e["reason"] for e in await objects.events(name)}


async def _state_is(objects: Objects, name: str, state: str) -> bool:
    return bool(((await objects.get(name)).get("status") or {}).get("state") == state)
