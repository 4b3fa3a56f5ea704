"""Bad input on the command subject ends in a clear BackupRejected or a dead letter; the services keep going."""

from __future__ import annotations

import json
from typing import Any

import nats
import pytest

from lc2backup.domain import backup_id_for_request
from tests.eventing.test_consuming import dead_letters
from tests.support import System

pytestmark = pytest.mark.e2e

SUBJECT = "lc2.backup.cmd.request"


def nested(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(spec))
    *parents, leaf = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return out


async def test_bad_commands_are_rejected_with_reasons_or_dead_lettered(
    system: System, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    good = system.spec(source, destination)
    rejected_cases: dict[str, tuple[dict[str, Any], set[str]]] = {
        "missing": (nested(good, "database.instanceId", KeyError), {"spec.database.instanceId"}),
        "wrong-type": (nested(good, "retentionDays", "thirty"), {"spec.retentionDays"}),
        "provider": (nested(good, "provider", "ibm-cloud"), {"spec.provider"}),
        "empty-bucket": (nested(good, "documentLibrary.sourceBucket", ""), {"spec.documentLibrary.sourceBucket"}),
        "bad-bucket": (
            nested(good, "documentLibrary.destinationBucket", "Not_A_Bucket"),
            {"spec.documentLibrary.destinationBucket"},
        ),
        "dotdot": (
            nested(good, "documentLibrary.sourcePrefix", "store/../../etc/"),
            {"spec.documentLibrary.sourcePrefix"},
        ),
        "absolute": (
            nested(good, "documentLibrary.destinationPrefix", "/var/backups/"),
            {"spec.documentLibrary.destinationPrefix"},
        ),
        "many": (
            {"projectId": 7, "provider": None},
            {"spec.projectId", "spec.provider", "spec.environment", "spec.database", "spec.documentLibrary"},
        ),
    }
    unreadable = {
        b"\xff\xfe\x00 not utf-8": "not UTF-8",
        b'{"requestId": ': "not JSON",
        b'["a", "list"]': "expected an object",
        json.dumps({"requestId": "huge", "spec": {"pad": "x" * 70_000}}).encode(): "too large",
    }
    nc = await nats.connect(system.nats.url)
    js = nc.jetstream()
    try:
        for name, (spec, _) in rejected_cases.items():
            await js.publish(SUBJECT, json.dumps({"requestId": name, "spec": spec}).encode())
        for raw in unreadable:
            await js.publish(SUBJECT, raw)
        await js.publish(SUBJECT, json.dumps({"requestId": "still-fine", "spec": good}).encode())

        for name, (_, fields) in rejected_cases.items():
            doc = await system.wait_for(backup_id_for_request(name))
            assert doc["state"] == "Rejected", name
            problems = {p["field"]: p["message"] for p in doc["status"]["problems"]}
            assert fields <= set(problems), (name, problems)
            assert all(problems.values())
            assert all(f in doc["message"] for f in fields)

        # The services kept running: a valid request sent after all of that succeeds.
        assert (await system.wait_for(backup_id_for_request("still-fine")))["state"] == "Succeeded"

        letters = await dead_letters(nc, system_topology())
        reasons = [(m.headers or {}).get("Lc2-Dlq-Reason", "") for m in letters]
        for expected in unreadable.values():
            assert sum(expected in r for r in reasons) == 1, (expected, reasons)
        assert all((m.headers or {}).get("Lc2-Dlq-Service") == "crd-gateway" for m in letters)
    finally:
        await nc.close()

    async with system.client() as api:
        assert (await api.get("/readyz")).status_code == 200
        rejected = (await api.get("/api/v1/backups", params={"state": "Rejected"})).json()["items"]
        assert len(rejected) == len(rejected_cases)


def system_topology() -> Any:
    from lc2backup.eventing import Topology

    return Topology()
