"""The API emulator answers as kube-apiserver does for the CRD: its schema, its CEL rules, OpenAPI, bookmarks.

Real ``kubectl`` (default ``--validate=strict``) applies real manifests; a refusal must carry the CRD's own
message, and what was refused must not exist on the emulator afterwards. Every ``x-kubernetes-validations``
rule of the generated CRD is exercised both ways: ``RULE_CASES`` is keyed by the rule's message, and a test
fails if the CRD has a rule without cases.
"""

from __future__ import annotations

import asyncio
import copy
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from lc2backup.crd_gateway import crd
from lc2backup.domain import API_GROUP, API_VERSION, KIND
from lc2backup.testing import KubeEmulator
from tests.k8s.conftest import ROOT, Kubectl, Objects

pytestmark = pytest.mark.k8s

SPEC: dict[str, Any] = {
    "projectId": "retail",
    "environment": "prd",
    "provider": "aws",
    "database": {"type": "snapshot", "instanceId": "retail-prd-db"},
    "documentLibrary": {"sourceBucket": "retail-prd-dl", "destinationBucket": "lc2-backups"},
}
LOCAL_RULE, OVERLAP_RULE, ACCOUNT_RULE = (
    rule["message"] for rule in crd.BACKUP_REQUESTS.spec_schema()["x-kubernetes-validations"][:3]
)
IMMUTABLE = crd.BACKUP_REQUESTS.immutable_message
AZURE_DL = {"sourceBucket": "liferay", "destinationBucket": "backups", "storageAccount": "lc2store"}


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(SPEC)
    for key, value in spec.items():
        body[key] = value
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": body}


def shared(source_prefix: str, destination_prefix: str) -> dict[str, Any]:
    return {
        "sourceBucket": "shared",
        "sourcePrefix": source_prefix,
        "destinationBucket": "shared",
        "destinationPrefix": destination_prefix,
    }


# rule message -> (manifests the API server accepts, manifests it refuses with that message) on create
RULE_CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    LOCAL_RULE: (
        [manifest("local-dump", provider="local", database={"type": "dump", "instanceId": "liferay"})],
        [manifest("local-snapshot", provider="local")],
    ),
    OVERLAP_RULE: (
        [
            manifest("disjoint", documentLibrary=shared("dl/", "backups/")),
            manifest("sibling-prefixes", documentLibrary=shared("dl", "dl-backups")),
        ],
        [
            manifest("dest-in-source", documentLibrary=shared("dl/", "dl/backups/")),
            manifest("source-in-dest", documentLibrary=shared("backups/dl/", "backups")),
            manifest("same-place", documentLibrary=shared("", "")),
        ],
    ),
    ACCOUNT_RULE: (
        [manifest("azure-with-account", provider="azure", documentLibrary=AZURE_DL)],
        [
            manifest("azure-without-account", provider="azure"),
            manifest("aws-with-account", documentLibrary={**SPEC["documentLibrary"], "storageAccount": "lc2store"}),
        ],
    ),
}


async def exists(kubectl: Kubectl, name: str) -> bool:
    code, _, err = await kubectl.run("get", "br", name, check=False)
    assert code == 0 or "NotFound" in err, err
    return code == 0


def test_every_cel_rule_of_the_crd_has_cases() -> None:
    rules = crd.BACKUP_REQUESTS.spec_schema()["x-kubernetes-validations"]
    assert {r["message"] for r in rules} == {*RULE_CASES, IMMUTABLE}


@pytest.mark.parametrize("message", sorted(RULE_CASES))
async def test_cel_rule_both_ways_through_kubectl(kubectl: Kubectl, message: str) -> None:
    accepted, refused = RULE_CASES[message]
    for doc in accepted:
        out = await kubectl.apply(doc)
        assert f"{doc['metadata']['name']} created" in out
    for doc in refused:
        err = await kubectl.refused("apply", "-f", "-", manifest=doc)
        name = doc["metadata"]["name"]
        assert f'The BackupRequest "{name}" is invalid: spec: Invalid value: "object": {message}' in err, err
        assert not await exists(kubectl, name)


async def test_spec_is_immutable_from_creation(kubectl: Kubectl, objects: Objects) -> None:
    """The transition rule ``self == oldSelf``: any spec change is refused; metadata and status still change."""
    doc = manifest("nightly")
    await kubectl.apply(doc)
    before = await kubectl.get("nightly")
    changed = copy.deepcopy(doc)
    changed["spec"]["retentionDays"] = 90
    err = await kubectl.refused("apply", "-f", "-", manifest=changed)
    assert f'The BackupRequest "nightly" is invalid: spec: Invalid value: "object": {IMMUTABLE}' in err
    err = await kubectl.refused("patch", "br", "nightly", "--type=merge", "-p", '{"spec":{"environment":"uat"}}')
    assert IMMUTABLE in err
    ops = '[{"op":"replace","path":"/spec/provider","value":"gcp"}]'
    assert IMMUTABLE in await kubectl.refused("patch", "br", "nightly", "--type=json", "-p", ops)
    with pytest.raises(ApiException) as refused:
        await objects.patch_spec("nightly", {"retentionDays": 5})
    assert refused.value.status == 422 and IMMUTABLE in str(refused.value.body)

    # accepted side of the rule: a change that leaves the spec as it was
    await kubectl.apply(doc)  # the same manifest again: unchanged
    await kubectl("label", "br", "nightly", "team=web")
    after = await kubectl.get("nightly")
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == 1
    assert after["metadata"]["labels"] == {"team": "web"}


SCHEMA_REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "uppercase projectId": (
        {"projectId": "Retail"},
        "spec.projectId: Invalid value: \"Retail\": spec.projectId in body should match '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'",
    ),
    "unknown provider": (
        {"provider": "ibm"},
        'spec.provider: Unsupported value: "ibm": supported values: "aws", "gcp", "azure", "local"',
    ),
    "retention below the minimum": (
        {"retentionDays": 0},
        "spec.retentionDays: Invalid value: 0: spec.retentionDays in body should be greater than or equal to 1",
    ),
    "retention above the maximum": (
        {"retentionDays": 3651},
        "spec.retentionDays: Invalid value: 3651: spec.retentionDays in body should be less than or equal to 3650",
    ),
    "retention as a string": ({"retentionDays": "30"}, "spec.retentionDays in body must be of type integer"),
    "projectId too long": ({"projectId": "a" * 64}, "spec.projectId: Too long: may not be more than 63 bytes"),
    "missing database": ({"database": None}, "spec.database: Required value"),
    "too many tags": ({"tags": {f"k{i}": "v" for i in range(33)}}, "spec.tags: Too many: 33: must have at most 32"),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_REFUSALS))
async def test_schema_refusals_carry_the_field_and_reason(kubectl: Kubectl, case: str) -> None:
    changes, expected = SCHEMA_REFUSALS[case]
    doc = manifest("bad")
    for key, value in changes.items():
        if value is None:
            del doc["spec"][key]
        else:
            doc["spec"][key] = value
    err = await kubectl.refused("apply", "-f", "-", manifest=doc)
    assert 'The BackupRequest "bad" is invalid' in err and expected in err, err
    assert not await exists(kubectl, "bad")


async def test_names_are_rfc_1123_subdomains(kubectl: Kubectl) -> None:
    err = await kubectl.refused("apply", "-f", "-", manifest=manifest("Nightly_Retail"))
    assert (
        'The BackupRequest "Nightly_Retail" is invalid: metadata.name: Invalid value: "Nightly_Retail": a lowercase RFC 1123 subdomain'
        in err
    )
    assert "nightly.retail-1 created" in await kubectl.apply(manifest("nightly.retail-1"))


async def test_unknown_fields_are_refused_under_strict_and_pruned_otherwise(kubectl: Kubectl) -> None:
    doc = manifest("extra")
    doc["spec"]["schedule"] = "daily"
    doc["spec"]["database"]["engine"] = "postgres"
    err = await kubectl.refused("apply", "-f", "-", manifest=doc)  # kubectl's default: --validate=strict
    assert 'strict decoding error: unknown field "spec.database.engine", unknown field "spec.schedule"' in err, err
    assert not await exists(kubectl, "extra")
    await kubectl.apply(doc, "--validate=ignore")  # accepted, and the API server drops what it does not know
    spec = (await kubectl.get("extra"))["spec"]
    assert "schedule" not in spec and "engine" not in spec["database"]
    # and fills the schema's defaults
    assert spec["retentionDays"] == 30 and spec["documentLibrary"]["excludeGeneratedFiles"] is True
    assert spec["documentLibrary"]["sourcePrefix"] == "" and spec["documentLibrary"]["destinationPrefix"] == ""


def _post(kube: KubeEmulator, path: str, body: dict[str, Any], method: str = "POST") -> tuple[int, dict[str, Any]]:
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    request = urllib.request.Request(
        kube.url + path, data=json.dumps(body).encode(), method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


COLLECTION = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/default/{crd.BACKUP_REQUESTS.plural}"


async def test_refusal_is_a_422_status_with_causes(kube: KubeEmulator) -> None:
    doc = manifest("broken", provider="local", projectId="Retail")
    code, status = _post(kube, COLLECTION, doc)
    assert code == 422
    assert (status["kind"], status["status"], status["reason"], status["code"]) == ("Status", "Failure", "Invalid", 422)
    details = status["details"]
    assert (details["name"], details["group"], details["kind"]) == ("broken", API_GROUP, KIND)
    causes = {(c["field"], c["reason"]) for c in details["causes"]}
    assert causes == {("spec.projectId", "FieldValueInvalid"), ("spec", "FieldValueInvalid")}
    assert any(c["message"] == f'Invalid value: "object": {LOCAL_RULE}' for c in details["causes"])
    assert status["message"].startswith(f'{KIND}.{API_GROUP} "broken" is invalid: [')


async def test_status_writes_are_checked_against_the_status_schema(kube: KubeEmulator, kubectl: Kubectl) -> None:
    await kubectl.apply(manifest("nightly"))
    code, status = _post(kube, f"{COLLECTION}/nightly/status", {"status": {"state": "Bogus"}}, method="PATCH")
    assert code == 422 and status["details"]["causes"][0]["field"] == "status.state"
    code, doc = _post(kube, f"{COLLECTION}/nightly/status", {"status": {"state": "Queued"}}, method="PATCH")
    assert code == 200 and doc["status"] == {"state": "Queued"}


async def test_openapi_v3_publishes_the_crd_schema(kube: KubeEmulator) -> None:
    with urllib.request.urlopen(kube.url + "/openapi/v3", timeout=5) as resp:
        index = json.loads(resp.read())
    url = index["paths"][f"apis/{API_GROUP}/{API_VERSION}"]["serverRelativeURL"]
    with urllib.request.urlopen(kube.url + url, timeout=5) as resp:
        doc = json.loads(resp.read())
    name = ".".join(reversed(API_GROUP.split("."))) + f".{API_VERSION}.{KIND}"
    published = doc["components"]["schemas"][name]
    assert published["properties"]["spec"] == crd.BACKUP_REQUESTS.spec_schema()
    assert published["x-kubernetes-group-version-kind"] == [{"group": API_GROUP, "version": API_VERSION, "kind": KIND}]
    patch = doc["paths"][
        f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{{namespace}}/{crd.BACKUP_REQUESTS.plural}/{{name}}"
    ]["patch"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]


async def _watch_lines(kube: KubeEmulator, query: str, seconds: int) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        url = f"{kube.url}{COLLECTION}?watch=true&timeoutSeconds={seconds}&{query}"
        with urllib.request.urlopen(url, timeout=seconds + 10) as resp:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]

    return await asyncio.to_thread(read)


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeEmulator]:
    """This module's emulator sends a BOOKMARK after one quiet second (kube-apiserver: about a minute)."""
    emulator = KubeEmulator(tmp_path / "kube", crds=[ROOT / crd.BACKUP_REQUESTS.contract_path], bookmark_seconds=1)
    emulator.start()
    yield emulator
    emulator.stop()


async def test_watch_bookmarks_only_when_asked(kube: KubeEmulator, kubectl: Kubectl) -> None:
    await kubectl.apply(manifest("nightly"))
    rv = (await kubectl.get("nightly"))["metadata"]["resourceVersion"]
    asked = await _watch_lines(kube, f"resourceVersion={rv}&allowWatchBookmarks=true", 3)
    assert asked and {e["type"] for e in asked} == {"BOOKMARK"}
    assert asked[0]["object"]["metadata"] == {"resourceVersion": rv}
    assert asked[0]["object"]["kind"] == KIND
    assert await _watch_lines(kube, f"resourceVersion={rv}", 3) == []  # the control: not asked, none sent
