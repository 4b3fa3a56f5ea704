"""The watch loop against the emulator process: list, follow, resume, 410 Gone, API server restarts.

No NATS here: the handler records what it saw, so these tests isolate the Kubernetes side of crd-gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lc2backup.crd_gateway.crd import BACKUP_REQUESTS
from lc2backup.crd_gateway.errors import KubernetesUnavailable, ResourceConflict
from lc2backup.crd_gateway.kube import KubeApi, WatchEvent
from lc2backup.crd_gateway.watching import Watcher
from lc2backup.testing import KubeEmulator
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
class Recorder:
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, resourceVersion)
    failures: dict[str, int] = field(default_factory=dict)  # name -> handler failures still to inject

    async def __call__(self, event: WatchEvent) -> None:
        name = event.object["metadata"]["name"]
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            raise KubernetesUnavailable("injected: the intake is unavailable")
        self.seen.append((event.type, name, event.resource_version or ""))

    def names(self, kind: str = "ADDED") -> list[str]:
        return [name for t, name, _ in self.seen if t == kind]


@dataclass
class Running:
    watcher: Watcher
    recorder: Recorder
    stop: asyncio.Event
    task: asyncio.Task[None]


@pytest.fixture
async def running(api: KubeApi) -> AsyncIterator[Running]:
    recorder = Recorder()
    watcher = Watcher(api, BACKUP_REQUESTS, None, recorder, backoff_initial=0.05, backoff_max=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    yield Running(watcher, recorder, stop, task)
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_lists_then_follows_every_change(running: Running, objects: Objects) -> None:
    await eventually(lambda: running.watcher.synced, what="first list")
    await objects.create("a", SPEC)
    await eventually(lambda: "a" in running.recorder.names(), what="ADDED a")
    await objects.patch_labels("a", {"team": "web"})  # the spec is immutable; metadata is not
    await eventually(lambda: "a" in running.recorder.names("MODIFIED"), what="MODIFIED a")
    await objects.delete("a")
    await eventually(lambda: "a" in running.recorder.names("DELETED"), what="DELETED a")
    assert running.watcher.lists == 1


async def test_existing_objects_are_listed_first(api: KubeApi, objects: Objects) -> None:
    for name in ("x", "y"):
        await objects.create(name, SPEC)
    recorder = Recorder()
    watcher = Watcher(api, BACKUP_REQUESTS, "default", recorder, backoff_initial=0.05, backoff_max=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await eventually(lambda: watcher.synced)
    assert recorder.names() == ["x", "y"]
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_relist_hands_over_in_creation_order_not_by_name(api: KubeApi, objects: Objects) -> None:
    """The API server lists by name; BackupRequests created while nobody watched enter in the order applied."""
    for name in ("zeta", "alpha", "mid"):
        await objects.create(name, SPEC)
    recorder = Recorder()
    watcher = Watcher(api, BACKUP_REQUESTS, "default", recorder, backoff_initial=0.05, backoff_max=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await eventually(lambda: watcher.synced)
    assert recorder.names() == ["zeta", "alpha", "mid"]
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_dropped_watch_resumes_from_its_resource_version(
    running: Running, objects: Objects, kube: KubeEmulator
) -> None:
    await eventually(lambda: running.watcher.synced)
    await objects.create("a", SPEC)
    await eventually(lambda: "a" in running.recorder.names())
    watches = running.watcher.watches
    kube.drop_watches()
    await objects.create("b", SPEC)
    await eventually(lambda: "b" in running.recorder.names(), what="ADDED b after the drop")
    assert running.watcher.watches > watches  # a new watch request ...
    assert running.watcher.lists == 1  # ... resumed, not re-listed
    assert running.recorder.names() == ["a", "b"]  # nothing replayed, nothing skipped


async def test_gone_resource_version_relists(running: Running, objects: Objects, kube: KubeEmulator) -> None:
    await eventually(lambda: running.watcher.synced)
    await objects.create("a", SPEC)
    await eventually(lambda: "a" in running.recorder.names())
    kube.compact()  # the history is gone: resuming from a's resourceVersion is 410
    await eventually(lambda: running.watcher.lists == 2, what="a re-list after 410 Gone")
    await objects.create("b", SPEC)
    await eventually(lambda: "b" in running.recorder.names())
    assert running.recorder.names() == ["a", "a", "b"]  # the re-list shows a again; handlers are idempotent


async def test_api_server_restart_is_survived(running: Running, objects: Objects, kube: KubeEmulator) -> None:
    await eventually(lambda: running.watcher.synced)
    await objects.create("a", SPEC)
    await eventually(lambda: "a" in running.recorder.names())
    kube.stop()
    await asyncio.sleep(0)  # the watcher now sees the connection close and retries with backoff
    kube.start()
    await objects.create("b", SPEC)
    await eventually(lambda: "b" in running.recorder.names(), what="ADDED b after the restart")
    assert set(running.recorder.names()) == {"a", "b"}


async def test_a_failing_handler_is_retried_and_nothing_is_skipped(running: Running, objects: Objects) -> None:
    await eventually(lambda: running.watcher.synced)
    running.recorder.failures["a"] = 3
    await objects.create("a", SPEC)
    await objects.create("b", SPEC)
    await eventually(lambda: running.recorder.names() == ["a", "b"], what="a then b")
    assert running.recorder.failures["a"] == 0


async def test_status_subresource_and_conflicts(api: KubeApi, objects: Objects) -> None:
    created = await objects.create("a", SPEC)
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["resourceVersion"]
    patched = await api.patch_status(
        BACKUP_REQUESTS, "default", "a", {"status": {"state": "Pending"}, "spec": {"retentionDays": 5}}
    )
    assert patched["status"] == {"state": "Pending"} and patched["spec"]["retentionDays"] == 30  # the default
    assert patched["metadata"]["generation"] == 1  # a status write is not a spec change
    with pytest.raises(ResourceConflict):
        await api.patch_status(
            BACKUP_REQUESTS,
            "default",
            "a",
            {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": {"state": "Failed"}},
        )
    labelled = await objects.patch_labels("a", {"team": "web"})
    assert labelled["metadata"]["generation"] == 1 and labelled["status"] == {"state": "Pending"}
