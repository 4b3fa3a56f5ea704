"""One active backup per project+environment: later requests queue, visibly, and run in request order."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import nats
import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import API_GROUP, API_VERSION, KIND, backup_id_for_manifest, backup_id_for_request
from tests.polling import eventually
from tests.support import System

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)
async def test_requests_queue_per_environment_and_run_in_order(
    system: System, s3: Any, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    await seed_document_library(s3, source, "", plan_document_library(40))
    environments = ["dev", "uat", "prd"]
    requests = [(f"r{i}", environments[i % 3]) for i in range(12)]
    nc = await nats.connect(system.nats.url)
    try:
        js = nc.jetstream()
        for request_id, env in requests:
            spec = system.spec(source, destination, environment=env)
            await js.publish("lc2.backup.cmd.request", json.dumps({"requestId": request_id, "spec": spec}).encode())
        ids = {backup_id_for_request(r): env for r, env in requests}

        # While the first ones run, later ones are visibly queued.
        async def queued() -> dict[str, Any]:
            states = {}
            for backup_id in ids:
                doc = await system.get(backup_id)
                if doc is not None and doc["state"] == "Queued":
                    return doc
                states[backup_id] = doc and doc["state"]
            raise AssertionError(f"none Queued: {states}")

        queued_seen = await eventually(queued, timeout=60, what="a later request visibly queued", context=system.logs)
        assert "Queued behind backup" in queued_seen["message"]
        assert queued_seen["status"]["queuePosition"] >= 1

        docs = {b: await system.wait_for(b, timeout=90) for b in ids}
    finally:
        await nc.close()
    assert all(d["state"] == "Succeeded" for d in docs.values()), [d["message"] for d in docs.values()]

    # Per environment: the backups in the order this test published them, against the order they started.
    lanes: dict[str, list[str]] = defaultdict(list)
    for backup_id, env in ids.items():  # dicts keep insertion order: the publishing order
        lanes[env].append(backup_id)
    for env, submitted in lanes.items():
        runs = {b: {e["type"]: e["seq"] for e in await system.events(b)} for b in submitted}
        admitted = sorted(submitted, key=lambda b: runs[b]["BackupAdmitted"])
        assert admitted == submitted, f"{env}: admitted out of submission order"
        for before, after in itertools.pairwise(submitted):
            assert runs[after]["BackupAdmitted"] > runs[before]["BackupSucceeded"], f"{env}: admitted too early"


LANE_REQUESTS = 12


@pytest.mark.timeout(600)
async def test_one_environment_is_admitted_in_submission_order_across_a_gateway_crash(
    stack: LocalStack,
    nats_server: NatsServer,
    tmp_path: Path,
    unique: str,
    s3: Any,
    buckets: tuple[str, str],
    replicas: int,
) -> None:
    """Requests for one environment start in the order they were submitted, by NATS and by the API alike,
    even when crd-gateway dies handling one of them: the reference is the order this test submitted them in.

    crd-gateway crashes at its second BackupRequested append. The commands it held unacknowledged come back
    only after the ack wait (20 s here), while the restarted gateway is handed the later commands at once: an
    intake that records commands as they come records those first. A small intake window (4) keeps the later
    commands undelivered at the crash whatever the machine's speed.
    """
    source, destination = buckets
    await seed_document_library(s3, source, "", plan_document_library(5))
    markers = tmp_path / "crash-markers"
    gateway = {
        "LC2_CRASH_AT": "before-append:BackupRequested@2",
        "LC2_CRASH_MARKERS": str(markers),
        "LC2_INTAKE_CONCURRENCY": "4",
        "LC2_CONSUMER__ACK_WAIT_SECONDS": "20",
    }
    system = System.local(
        stack, nats_server, tmp_path / "logs", unique, service_env={"crd-gateway": gateway}, replicas=replicas
    )
    system.start()
    try:
        submitted = await _submit_mixed(system, source, destination)
        assert system.services is not None
        services = system.services

        def dead_gateway() -> str | None:  # whichever replica reached the point
            for svc in services.replicas_of("crd-gateway"):
                if svc.process is not None and not svc.process.alive():
                    return svc.key
            return None

        killed = await eventually(
            dead_gateway,
            timeout=60,
            what="crd-gateway killed at its second BackupRequested append",
            context=system.logs,
        )
        assert (markers / "before-append:BackupRequested").exists()
        services.restart(killed)
        docs = {b: await system.wait_for(b, timeout=180) for b in submitted}
        assert all(d["state"] == "Succeeded" for d in docs.values()), [d["message"] for d in docs.values()]
        runs = {b: {e["type"]: e["seq"] for e in await system.events(b)} for b in submitted}
    finally:
        system.stop()
    admitted = sorted(submitted, key=lambda b: runs[b]["BackupAdmitted"])
    assert admitted == submitted, f"admitted as submitted #{[submitted.index(b) + 1 for b in admitted]}"
    for before, after in itertools.pairwise(submitted):
        assert runs[after]["BackupAdmitted"] > runs[before]["BackupSucceeded"], "admitted before the previous ended"


async def _submit_mixed(system: System, source: str, destination: str) -> list[str]:
    """LANE_REQUESTS requests for retail/dev, one at a time (each stored before the next is sent), alternating
    NATS commands, NATS manifests and API calls, with specs of different sizes; their backup ids in order."""
    submitted: list[str] = []
    nc = await nats.connect(system.nats.url)
    try:
        async with system.client() as api:
            for i in range(LANE_REQUESTS):
                spec = system.spec(source, destination, environment="dev")
                spec["tags"] = {f"t{t}": "x" * (23 * i) for t in range(i * 2)}
                path = i % 3
                if path == 0:
                    await nc.jetstream().publish(
                        "lc2.backup.cmd.request", json.dumps({"requestId": f"order-{i}", "spec": spec}).encode()
                    )
                    submitted.append(backup_id_for_request(f"order-{i}"))
                elif path == 1:
                    manifest = {
                        "apiVersion": f"{API_GROUP}/{API_VERSION}",
                        "kind": KIND,
                        "metadata": {"name": f"order-{i}", "namespace": "team"},
                        "spec": spec,
                    }
                    await nc.jetstream().publish("lc2.backup.cmd.request", json.dumps(manifest).encode())
                    submitted.append(backup_id_for_manifest(spec["projectId"], "team", f"order-{i}"))
                else:
                    resp = await api.post("/api/v1/backups", json=spec)
                    assert resp.status_code == 202, resp.text
                    submitted.append(resp.json()["backupId"])
    finally:
        await nc.close()
    return submitted
