"""One active backup per project+environment: later requests queue, visibly, and run in request order."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import nats
import pytest

from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import backup_id_for_request
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
        queued_seen: dict[str, Any] = {}
        async with asyncio.timeout(60):
            while not queued_seen:
                for backup_id in ids:
                    doc = await system.get(backup_id)
                    if doc is not None and doc["state"] == "Queued":
                        queued_seen = doc
                        break
        assert "Queued behind backup" in queued_seen["message"]
        assert queued_seen["status"]["queuePosition"] >= 1

        docs = {b: await system.wait_for(b, timeout=90) for b in ids}
    finally:
        await nc.close()
    assert all(d["state"] == "Succeeded" for d in docs.values()), [d["message"] for d in docs.values()]

    lanes: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # env -> (requested, admitted, ended) seqs
    for backup_id, env in ids.items():
        seq = {e["type"]: e["seq"] for e in await system.events(backup_id)}
        lanes[env].append((seq["BackupRequested"], seq["BackupAdmitted"], seq["BackupSucceeded"]))
    for env, runs in lanes.items():
        runs.sort()
        admitted_order = sorted(runs, key=lambda r: r[1])
        assert admitted_order == runs, f"{env}: admitted out of request order"
        for before, after in zip(runs, runs[1:], strict=False):
            assert after[1] > before[2], f"{env}: a backup was admitted before the previous one ended"
