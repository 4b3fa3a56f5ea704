"""kubectl against the emulator, the six services as real processes: RestoreRequests end to end.

A backup is taken through the API, then ``kubectl apply`` of a RestoreRequest restores it into another
environment; the CR's status follows the restore's event log. Oracles read the servers with their own queries:
psql for the tables (``table_digests``: every Liferay table's rows, md5 over each row's text), the S3 client for
the objects, the event log itself for how many restores each CR became, and a core NATS subscription on the
restore subject for how many restore commands were published. Refusals by the API server (the CRD's schema)
need no services.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.aio.client import Client as NatsClient

from lc2backup.crd_gateway import crd
from lc2backup.domain import API_GROUP, API_VERSION, RequestSource
from lc2backup.domain.restoring import RESTORE_KIND, RequestRestore, restore_id_for_resource
from lc2backup.domain.wire import decode_envelope
from lc2backup.eventing import DirectReader, Topology
from tests.k8s.conftest import Kubectl, Objects, eventually
from tests.restore.helpers import backed_up, databases_named, objects_under, table_digests
from tests.support import ALL_SERVICES, System

pytestmark = [pytest.mark.k8s, pytest.mark.e2e, pytest.mark.restore]
ROOT = Path(__file__).resolve().parents[2]
T = Topology()
RR = crd.RESTORE_REQUESTS


@pytest.fixture
def system_services() -> tuple[str, ...]:
    return ALL_SERVICES


def restore_manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": RESTORE_KIND, "metadata": {"name": name}, "spec": spec}


def local_sample(backup_id: str, database: str, bucket: str) -> dict[str, Any]:
    """deploy/samples/restorerequest-local.yaml, pointed at this test's backup, database name and bucket."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "deploy/samples/restorerequest-local.yaml").read_text())
    doc["spec"]["backupId"] = backup_id
    doc["spec"]["database"]["databaseName"] = database
    doc["spec"]["documentLibrary"]["bucket"] = bucket
    return doc


async def wait_restore(kubectl: Kubectl, name: str, state: str, namespace: str = "default") -> dict[str, Any]:
    jsonpath = f"--for=jsonpath={{.status.state}}={state}"
    await kubectl("wait", "-n", namespace, jsonpath, f"rr/{name}", "--timeout=90s")
    return await kubectl.get(name, namespace, kind="rr")


async def restores_requested(system: System) -> dict[str, list[str]]:
    """CR uid -> the restore id of every RestoreRequested naming it as its source, read from the event log."""
    nc = await nats.connect(system.nats.url)
    try:
        reader = DirectReader(nc, T.events_stream)
        messages = await reader.read_all(T.all_events)
        await reader.close()
    finally:
        await nc.drain()
    out: dict[str, list[str]] = {}
    for envelope in (decode_envelope(m.data) for m in messages):
        if envelope.type == "RestoreRequested":
            out.setdefault(str(envelope.data["source"].get("uid")), []).append(envelope.backup_id)
    return out


class Commands:
    """Every message published on the restore subject, seen by a core subscription (a JetStream publish is one)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def on_message(self, msg: Any) -> None:
        self.seen.append(json.loads(msg.data))

    def of(self, uid: str) -> list[dict[str, Any]]:
        return [c for c in self.seen if (c.get("source") or {}).get("uid") == uid]


@pytest.fixture
async def admin(k8s_system: System) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(k8s_system.nats.url)
    yield nc
    await nc.drain()


async def status_consumer_idle(nc: NatsClient) -> bool:
    info = await nc.jetstream().consumer_info(T.events_stream, "crd-gateway-status")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def test_kubectl_apply_restores_once_per_restore_request(
    k8s_system: System,
    kubectl: Kubectl,
    objects: Objects,
    admin: NatsClient,
    s3: Any,
    buckets: tuple[str, str],
    unique: str,
) -> None:
    system = k8s_system
    commands = Commands()
    await admin.subscribe(T.restore_subject, cb=commands.on_message)
    await admin.flush()
    backup_id, layout = await backed_up(system, s3, buckets, files=12)
    target_bucket, database = f"tgt-{unique}", f"qa_{unique}"
    await s3.create_bucket(Bucket=target_bucket)

    sample = local_sample(backup_id, database, target_bucket)
    name, ns = sample["metadata"]["name"], sample["metadata"]["namespace"]
    assert f"restorerequest.backup.liferay.cloud/{name} created" in await kubectl.apply(sample)
    # Onto the live source database without overwrite.confirm: the restorer refuses it, the CR says why.
    live = restore_manifest("over-live", {"backupId": backup_id, "database": {"databaseName": system.source_database}})
    await kubectl.apply(live)

    cr = await wait_restore(kubectl, name, "Succeeded", ns)
    uid = cr["metadata"]["uid"]
    status = cr["status"]
    assert (status["restoreId"], status["backupId"]) == (restore_id_for_resource(uid), backup_id)
    assert (status["target"], status["purpose"], status["observedGeneration"]) == ("retail/qa", "restore", 1)
    assert status["database"]["state"] == "Completed" and status["database"]["target"] == f"liferay-test/{database}"
    dl = status["documentLibrary"]
    regular = len(layout.regular)  # generated files (thumbnails, previews) were not backed up
    assert (dl["state"], dl["objectsDone"], dl["objectsTotal"], dl["percent"]) == ("Completed", regular, regular, 100)
    assert status["startTime"] and status["completionTime"] and "problems" not in status
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Succeeded", 1)
    # the restored database equals the source, row for row (psql), and the objects equal theirs (S3)
    assert table_digests(system.stack, database) == table_digests(system.stack, system.source_database)
    restored = await objects_under(s3, target_bucket, "liferay/")
    originals = await objects_under(s3, buckets[0], "liferay/")
    assert set(restored) == set(layout.regular) and all(restored[k] == originals[k] for k in layout.regular)

    table = await kubectl("get", "rr", "-n", ns)
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "BACKUP", "TARGET", "STATE", "AGE"]
    assert row.split()[:4] == [name, backup_id, "retail/qa", "Succeeded"] and "Restore succeeded" in row
    assert {"RestoreCreated", "RestoreSucceeded"} <= {e["reason"] for e in await objects.events(name, ns)}

    rejected = await wait_restore(kubectl, "over-live", "Rejected")
    problems = rejected["status"]["problems"]
    assert [p["field"] for p in problems] == ["spec.database.databaseName"]
    assert "overwrite.confirm" in problems[0]["message"] and "overwrite.confirm" in rejected["status"]["message"]
    failed = {c["type"]: c for c in rejected["status"]["conditions"]}["Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "Rejected")
    assert "database" not in rejected["status"] and "RestoreRejected" in {
        e["reason"] for e in await objects.events("over-live")
    }
    live_uid = rejected["metadata"]["uid"]

    # One CR, one restore: re-applied, and after crd-gateway restarts (it re-lists both CRs), nothing new is
    # published and the log holds one restore per CR (the counters: a positive control below).
    assert "unchanged" in await kubectl.apply(sample)
    services = system.services
    assert services is not None
    services.restart("crd-gateway")  # ready once it has listed every BackupRequest and RestoreRequest
    assert "unchanged" in await kubectl.apply(sample)
    await eventually(lambda: status_consumer_idle(admin), what="the status consumer caught up")
    assert (len(commands.of(uid)), len(commands.of(live_uid))) == (1, 1)
    by_uid = await restores_requested(system)
    assert (by_uid[uid], by_uid[live_uid]) == ([restore_id_for_resource(uid)], [restore_id_for_resource(live_uid)])
    assert databases_named(system.stack, f"{database}%") == [database]
    async with system.client() as client:
        listed = (await client.get("/api/v1/restores", params={"backupId": backup_id})).json()["items"]
    assert sorted(r["restoreId"] for r in listed) == sorted(by_uid[uid] + by_uid[live_uid])

    # Positive control: a second restore naming the CR (what a gateway deriving another id would publish) is
    # counted by both counters, and the CR keeps showing the restore its uid names.
    source = RequestSource(kind="kubernetes", command_id="forged", namespace=ns, name=name, uid=uid, generation=1)
    forged = RequestRestore(restore_id=uuid.uuid4(), spec=sample["spec"], source=source)
    await admin.jetstream().publish(T.restore_subject, forged.model_dump_json(by_alias=True).encode())
    await system.wait_for_restore(str(forged.restore_id))
    assert len(commands.of(uid)) == 2
    assert sorted((await restores_requested(system))[uid]) == sorted(
        [restore_id_for_resource(uid), str(forged.restore_id)]
    )
    await eventually(lambda: status_consumer_idle(admin), what="the status consumer caught up")
    after = (await kubectl.get(name, ns, kind="rr"))["status"]
    assert (after["restoreId"], after["state"]) == (restore_id_for_resource(uid), "Succeeded")


async def test_the_api_server_refuses_an_invalid_restore_request(kubectl: Kubectl) -> None:
    """``kubectl apply`` (``--validate=strict``) of a RestoreRequest the CRD's schema refuses never creates it; its
    spec is immutable from creation."""
    spec = {"backupId": "latest", "keepFailedHours": 721, "target": {"projectId": "Retail", "environment": "qa"}}
    err = await kubectl.refused("apply", "--validate=strict", "-f", "-", manifest=restore_manifest("bad", spec))
    assert 'The RestoreRequest "bad" is invalid' in err
    assert "spec.backupId: Invalid value: \"latest\": spec.backupId in body should match '^[0-9a-f-]{36}$'" in err
    assert "spec.keepFailedHours: Invalid value: 721" in err
    assert 'spec.target.projectId: Invalid value: "Retail"' in err
    code, _, missing = await kubectl.run("get", "rr", "bad", check=False)
    assert code != 0 and "NotFound" in missing

    unknown = {"backupId": str(uuid.uuid4()), "schedule": "daily"}
    err = await kubectl.refused("apply", "--validate=strict", "-f", "-", manifest=restore_manifest("typo", unknown))
    assert 'unknown field "spec.schedule"' in err

    valid = restore_manifest("once", {"backupId": str(uuid.uuid4())})
    await kubectl.apply(valid)
    created = await kubectl.get("once", kind="rr")
    assert created["spec"]["include"] == "all" and created["spec"]["purpose"] == "restore"  # the CRD's defaults
    valid["spec"]["include"] = "database"
    err = await kubectl.refused("apply", "-f", "-", manifest=valid)
    assert f'The RestoreRequest "once" is invalid: spec: Invalid value: "object": {RR.immutable_message}' in err
