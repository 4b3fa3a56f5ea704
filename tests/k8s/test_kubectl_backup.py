"""kubectl against the emulator, the five services as real processes: BackupRequests end to end.

``kubectl apply`` (its default ``--validate=strict``: the emulator serves ``/openapi/v3`` and enforces the
CRD's schema and CEL rules), then the backup runs on the local stack and the CR's status follows the event
log; ``kubectl get br`` and ``kubectl wait`` see it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
import pytest
import yaml

from lc2backup.crd_gateway import crd
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import API_GROUP, API_VERSION, KIND, backup_id_for_resource
from lc2backup.domain.wire import decode_envelope
from lc2backup.eventing import DirectReader, Topology
from lc2backup.testing import KubeEmulator
from tests.k8s.conftest import Kubectl, Objects, eventually
from tests.metadata_json import read_metadata_json
from tests.support import System

pytestmark = [pytest.mark.k8s, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}


async def requested_backups(system: System) -> list[str]:
    """The backup id of every BackupRequested in the event log (the truth, not a projection)."""
    nc = await nats.connect(system.nats.url)
    try:
        reader = DirectReader(nc, Topology().events_stream)
        messages = await reader.read_all(Topology().all_events)
        await reader.close()
    finally:
        await nc.drain()
    envelopes = [decode_envelope(m.data) for m in messages]
    return [e.backup_id for e in envelopes if e.type == "BackupRequested"]


def conditions(cr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in cr.get("status", {}).get("conditions", [])}


async def wait_state(
    kubectl: Kubectl, name: str, state: str, timeout: int = 120, namespace: str = "default"
) -> dict[str, Any]:
    jsonpath = f"--for=jsonpath={{.status.state}}={state}"
    await kubectl("wait", "-n", namespace, jsonpath, f"br/{name}", f"--timeout={timeout}s")
    return await kubectl.get(name, namespace)


def local_sample(system: System, source: str, destination: str) -> dict[str, Any]:
    """deploy/samples/backuprequest-local.yaml, pointed at this test's database and buckets."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "deploy/samples/backuprequest-local.yaml").read_text())
    doc["spec"]["database"].update(instanceId="liferay-test", databaseName=system.source_database)
    doc["spec"]["documentLibrary"].update(sourceBucket=source, destinationBucket=destination)
    return doc


async def test_kubectl_apply_backs_up_to_succeeded(
    k8s_system: System, kubectl: Kubectl, objects: Objects, s3: Any, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    layout = await seed_document_library(s3, source, "", plan_document_library(12))
    sample = local_sample(k8s_system, source, destination)
    name, ns = sample["metadata"]["name"], sample["metadata"]["namespace"]
    out = await kubectl.apply(sample)
    assert f"backuprequest.backup.liferay.cloud/{name} created" in out

    cr = await wait_state(kubectl, name, "Succeeded", namespace=ns)
    status = cr["status"]
    backup_id = backup_id_for_resource(cr["metadata"]["uid"])
    assert status["backupId"] == backup_id and status["observedGeneration"] == 1
    assert status["database"]["state"] == "Completed" and status["database"]["exportOperation"]["status"] == "succeeded"
    assert status["documentLibrary"]["transferJob"]["status"] == "succeeded"
    assert status["documentLibrary"]["counters"]["objectsCopied"] == len(layout.regular)
    assert status["documentLibrary"]["counters"]["objectsExcluded"] == len(layout.generated)
    assert status["metadataLocation"] == f"s3://{destination}/retail/dev/{backup_id}/metadata.json"
    assert status["startTime"] and status["completionTime"]
    ready = conditions(cr)["Ready"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Succeeded", 1)
    assert conditions(cr)["Failed"]["status"] == "False"

    table = await kubectl("get", "br", "-n", ns)
    header, row = table.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "STATE", "PROVIDER", "PROJECT", "ENVIRONMENT", "AGE"]
    assert row.split()[:5] == [name, "Succeeded", "local", "retail", "dev"]
    assert "Backup succeeded" in row
    assert (await kubectl("get", "backuprequests", "-A", "-o", "name")).split() == [
        f"backuprequest.backup.liferay.cloud/{name}"
    ]

    reasons = {e["reason"] for e in await objects.events(name, ns)}
    assert {"BackupCreated", "BackupSucceeded"} <= reasons
    assert (await k8s_system.get(backup_id) or {})["state"] == "Succeeded"

    # The spec is immutable from creation: the API server refuses the change with the CRD's own message,
    # and nothing reaches the gateway (generation unchanged, no second backup).
    sample["spec"]["retentionDays"] = 90
    err = await kubectl.refused("apply", "-f", "-", manifest=sample)
    assert (
        f'The BackupRequest "{name}" is invalid: spec: Invalid value: "object": {crd.BACKUP_REQUESTS.immutable_message}'
        in err
    )
    cr = await kubectl.get(name, ns)
    assert cr["metadata"]["generation"] == 1 and cr["spec"]["retentionDays"] != 90
    assert cr["status"]["observedGeneration"] == 1 and cr["status"]["state"] == "Succeeded"
    assert await requested_backups(k8s_system) == [backup_id]

    # Deleting the CR deletes neither the history nor the artefacts.
    await kubectl("delete", "br", name, "-n", ns)
    assert (await k8s_system.get(backup_id) or {})["state"] == "Succeeded"
    key = status["metadataLocation"].removeprefix(f"s3://{destination}/")
    meta = read_metadata_json(await (await s3.get_object(Bucket=destination, Key=key))["Body"].read())
    assert meta["backupId"] == backup_id


async def test_invalid_manifests_are_refused_by_the_api_server(
    k8s_system: System, kubectl: Kubectl, buckets: tuple[str, str]
) -> None:
    """Schema and CEL violations never become a BackupRequest: kubectl prints the CRD's reasons."""
    source, destination = buckets
    spec = k8s_system.spec(source, destination, projectId="Retail", retentionDays=0)
    spec["database"]["type"] = "snapshot"  # the local provider cannot snapshot: a CEL rule
    err = await kubectl.refused("apply", "-f", "-", manifest=manifest("broken", spec))
    assert 'The BackupRequest "broken" is invalid' in err
    assert 'spec.projectId: Invalid value: "Retail"' in err
    assert "spec.retentionDays: Invalid value: 0" in err
    assert "the local provider cannot take a managed snapshot: use database.type: dump" in err
    code, _, missing = await kubectl.run("get", "br", "broken", check=False)
    assert code != 0 and "NotFound" in missing
    assert await requested_backups(k8s_system) == []


async def test_what_the_schema_cannot_check_ends_rejected_with_the_reason(
    k8s_system: System, kubectl: Kubectl, objects: Objects, buckets: tuple[str, str]
) -> None:
    """Tag keys have no schema (structural schemas have no propertyNames): crd-gateway rejects them."""
    source, destination = buckets
    spec = k8s_system.spec(source, destination, tags={"-bad": "x", "team": "web"})
    await kubectl.apply(manifest("bad-tag", spec))
    cr = await wait_state(kubectl, "bad-tag", "Rejected", timeout=60)
    failed = conditions(cr)["Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "Rejected")
    assert conditions(cr)["Ready"]["status"] == "False"
    assert [p["field"] for p in cr["status"]["problems"]] == ["spec.tags.-bad.[key]"]
    assert "must be a tag key" in cr["status"]["message"] and "spec.tags.-bad" in failed["message"]
    assert "Rejected" in (await kubectl("get", "br", "bad-tag"))
    assert "BackupRejected" in {e["reason"] for e in await objects.events("bad-tag")}
    assert await requested_backups(k8s_system) == []


async def test_restarts_neither_lose_nor_duplicate_backups(
    k8s_system: System, kube: KubeEmulator, kubectl: Kubectl, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    await kubectl.apply(manifest("first", k8s_system.spec(source, destination)))
    first = backup_id_for_resource((await kubectl.get("first"))["metadata"]["uid"])

    # The API server goes away once the backup is requested; the backup carries on meanwhile.
    await eventually(lambda: k8s_system.get(first), what="the backup of 'first' in the projection")
    kube.stop()
    assert (await k8s_system.wait_for(first))["state"] == "Succeeded"
    kube.start()  # the watch reconnects and resumes; the status catches up from the event log
    await wait_state(kubectl, "first", "Succeeded", timeout=60)

    # A restarted gateway re-lists every BackupRequest: the existing one becomes no second backup.
    services = k8s_system.services
    assert services is not None
    services["crd-gateway"].stop()
    services.restart("crd-gateway")  # ready once it has listed (readiness includes the Kubernetes sync)
    await kubectl.apply(manifest("second", k8s_system.spec(source, destination, environment="uat")))
    second = backup_id_for_resource((await kubectl.get("second"))["metadata"]["uid"])
    await wait_state(kubectl, "second", "Succeeded")
    assert sorted(await requested_backups(k8s_system)) == sorted([first, second])
    assert (await kubectl.get("first"))["status"]["state"] == "Succeeded"
