"""The CRD: generated from the pydantic spec, structural, and accepting/rejecting the same manifests.

Two judges of the CRD: ``jsonschema`` on its ``openAPIV3Schema`` alone, and what the test API server does
with it (``lc2backup.testing.kubeschema``: pruning, defaults, the schema and the CEL rules, as
``tests/k8s/test_api_fidelity.py`` shows through kubectl). Neither calls the pydantic model they are
compared with. What a JSON-schema validator cannot evaluate is listed in ``PYDANTIC_ONLY``:

* the two ``x-kubernetes-validations`` CEL rules from ``CEL_RULES`` (local provider needs ``dump``; the
  destination must not overlap the source): the API server refuses them too;
* unknown fields: no ``additionalProperties: false`` in structural schemas (the API server prunes them, or
  rejects them under kubectl's default ``--validate=strict``);
* tag keys: no ``propertyNames`` in structural schemas (crd-gateway rejects them, the CR ends Rejected).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lc2backup.crd_gateway import crd
from lc2backup.domain import SpecInvalid, parse_spec
from lc2backup.domain.restoring import parse_restore_spec
from lc2backup.domain.spec import CEL_RULES
from lc2backup.testing.kubeschema import CrdSchema

pytestmark = pytest.mark.k8s
ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "projectId": "retail",
    "environment": "prd",
    "provider": "aws",
    "database": {"type": "snapshot", "instanceId": "retail-prd-db"},
    "documentLibrary": {"sourceBucket": "retail-prd-dl", "destinationBucket": "lc2-backups"},
}


def spec(**changes: Any) -> dict[str, Any]:
    """BASE with dotted-path changes; a value of ``...`` deletes the key."""
    out = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return out


ACCEPTED = {
    "aws snapshot": spec(),
    "local dump": spec(provider="local", database={"type": "dump", "instanceId": "liferay", "databaseName": "lportal"}),
    "every field": spec(
        provider="gcp",
        database={"type": "snapshot", "instanceId": "proj:region:inst", "databasesToIgnore": ["mysql", "sys"]},
        documentLibrary={
            "sourceBucket": "dl.example.com",
            "sourcePrefix": "retail/prd",
            "destinationBucket": "backups-1",
            "destinationPrefix": "lc2/retail/",
            "excludeGeneratedFiles": False,
        },
        retentionDays=3650,
        tags={"team": "web", "cost-center/id": "42"},
    ),
    "null database name": spec(database__databaseName=None),
    "same bucket, disjoint prefixes": spec(
        documentLibrary={
            "sourceBucket": "shared",
            "sourcePrefix": "dl/",
            "destinationBucket": "shared",
            "destinationPrefix": "backups/",
        }
    ),
    "retention lower bound": spec(retentionDays=1),
}

REJECTED = {
    "missing projectId": spec(projectId=...),
    "uppercase projectId": spec(projectId="Retail"),
    "projectId too long": spec(projectId="a" * 64),
    "environment with underscore": spec(environment="pr_d"),
    "unknown provider": spec(provider="ibm"),
    "unknown database type": spec(database__type="full"),
    "missing instanceId": spec(database__instanceId=...),
    "instanceId starting with a dash": spec(database__instanceId="-db"),
    "bad database name": spec(database__databaseName="1db"),
    "too many ignored databases": spec(database__databasesToIgnore=[f"db{i}" for i in range(65)]),
    "retention zero": spec(retentionDays=0),
    "retention above ten years": spec(retentionDays=3651),
    "retention as a string": spec(retentionDays="30"),
    "bucket with underscore": spec(documentLibrary__sourceBucket="bad_bucket"),
    "bucket too short": spec(documentLibrary__destinationBucket="ab"),
    "bucket with double dot": spec(documentLibrary__destinationBucket="a..b"),
    "absolute prefix": spec(documentLibrary__sourcePrefix="/retail"),
    "prefix with //": spec(documentLibrary__sourcePrefix="retail//prd"),
    "prefix with ..": spec(documentLibrary__destinationPrefix="retail/../prd"),
    "prefix with .": spec(documentLibrary__destinationPrefix="./prd"),
    "exclude flag as a string": spec(documentLibrary__excludeGeneratedFiles="yes"),
    "missing documentLibrary": spec(documentLibrary=...),
    "too many tags": spec(tags={f"k{i}": "v" for i in range(33)}),
    "tag value too long": spec(tags={"k": "v" * 257}),
    "spec not an object": ["retail"],
}

# What only pydantic (and crd-gateway's intake) can check here, and what enforces it in a cluster.
PYDANTIC_ONLY = {
    "local snapshot (CEL rule 1)": spec(provider="local"),
    "destination inside source (CEL rule 2)": spec(
        documentLibrary={"sourceBucket": "shared", "sourcePrefix": "dl/", "destinationBucket": "shared"}
    ),
    "source inside destination (CEL rule 2)": spec(
        documentLibrary={
            "sourceBucket": "shared",
            "sourcePrefix": "backups/dl/",
            "destinationBucket": "shared",
            "destinationPrefix": "backups/",
        }
    ),
    "unknown field (pruned, or refused by --validate=strict)": spec(schedule="daily"),
    "unknown nested field": spec(database__engine="postgres"),
    "bad tag key (no propertyNames in structural schemas)": spec(tags={"-bad": "v"}),
}
# Of those, what the API server itself refuses (the CEL rules); it prunes unknown fields and takes any tag key.
API_SERVER_REFUSES = {name for name in PYDANTIC_ONLY if "CEL rule" in name}


def api_server_refuses(raw: Any) -> bool:
    """The test API server's answer to a create of this spec: pruned, defaulted, then schema and CEL rules."""
    schema = CrdSchema(crd.BACKUP_REQUESTS.manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    obj = {"apiVersion": "backup.liferay.cloud/v1alpha1", "kind": "BackupRequest", "metadata": {"name": "x"}}
    obj["spec"] = copy.deepcopy(raw)
    schema.prune(obj)
    schema.default(obj)
    return bool(schema.validate(obj))


def schema_validator() -> jsonschema.Draft4Validator:
    openapi = crd.BACKUP_REQUESTS.manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema = copy.deepcopy(openapi["properties"]["spec"])
    # nullable is OpenAPI, not JSON Schema: widen the type the way the API server reads it
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.pop("nullable", False) and "type" in node:
                node["type"] = [node["type"], "null"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return jsonschema.Draft4Validator(schema)


def pydantic_accepts(raw: Any) -> bool:
    try:
        parse_spec(raw)
    except SpecInvalid:
        return False
    return True


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_both_accept(name: str) -> None:
    raw = ACCEPTED[name]
    assert pydantic_accepts(raw)
    assert not list(schema_validator().iter_errors(raw))
    assert not api_server_refuses(raw)


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_both_reject(name: str) -> None:
    raw = REJECTED[name]
    assert not pydantic_accepts(raw)
    assert list(schema_validator().iter_errors(raw)), f"the CRD schema accepts {name}"
    assert api_server_refuses(raw), f"the API server accepts {name}"


@pytest.mark.parametrize("name", sorted(PYDANTIC_ONLY))
def test_rules_a_json_schema_validator_cannot_evaluate_are_enforced_by_pydantic(name: str) -> None:
    raw = PYDANTIC_ONLY[name]
    assert not pydantic_accepts(raw)
    assert not list(schema_validator().iter_errors(raw)), "now expressible in the schema: move it to REJECTED"
    assert api_server_refuses(raw) == (name in API_SERVER_REFUSES)


def test_cel_rules_mirror_the_cross_field_rules() -> None:
    rules = crd.BACKUP_REQUESTS.spec_schema()["x-kubernetes-validations"]
    assert [(r["rule"], r["message"]) for r in rules[: len(CEL_RULES)]] == CEL_RULES
    assert rules[-1] == {"rule": "self == oldSelf", "message": crd.BACKUP_REQUESTS.immutable_message}


FORBIDDEN = {"$ref", "$defs", "definitions", "title", "patternProperties", "propertyNames", "const", "examples"}


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.items():
            out.extend(_walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_walk(value, f"{path}[{i}]"))
    return out


@pytest.mark.parametrize("resource", crd.RESOURCES, ids=lambda r: r.kind)
def test_schema_is_structural(resource: crd.CustomResource) -> None:
    for path, node in _walk(resource.openapi_schema()):
        assert not FORBIDDEN & set(node), f"{path} has {FORBIDDEN & set(node)}"
        assert node.get("additionalProperties") is not False, path
        assert "anyOf" not in node or all("type" not in o for o in node["anyOf"]), path
        if path.rsplit(".", 2)[-2:-1] == ["properties"]:  # the schema of a property
            assert "type" in node, f"{path} has no type"


NAMES = {
    "BackupRequest": ("backuprequests", ["br"], ["State", "Provider", "Project", "Environment", "Age", "Message"]),
    "RestoreRequest": ("restorerequests", ["rr"], ["Backup", "Target", "State", "Age", "Message"]),
}


@pytest.mark.parametrize("resource", crd.RESOURCES, ids=lambda r: r.kind)
def test_names_columns_and_subresource(resource: crd.CustomResource) -> None:
    manifest = resource.manifest()
    names = manifest["spec"]["names"]
    plural, short_names, columns = NAMES[resource.kind]
    assert manifest["metadata"]["name"] == f"{plural}.backup.liferay.cloud"
    assert (names["kind"], names["plural"], names["shortNames"]) == (resource.kind, plural, short_names)
    assert manifest["spec"]["scope"] == "Namespaced"
    (version,) = manifest["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for field in ("state", "message", "observedGeneration", "conditions", "startTime", "completionTime"):
        assert "type" in status[field], field


@pytest.mark.parametrize("resource", crd.RESOURCES, ids=lambda r: r.kind)
def test_checked_in_crd_matches_the_code(resource: crd.CustomResource) -> None:
    checked_in = (ROOT / resource.contract_path).read_text()
    assert checked_in == resource.yaml(), f"{resource.contract_path} drifted: run `python -m lc2backup.crd_gateway.crd`"
    assert yaml.safe_load(checked_in) == resource.manifest()


def test_the_deployment_installs_every_crd() -> None:
    checked_in = (ROOT / crd.DEPLOY_PATH).read_text()
    assert checked_in == crd.deploy_yaml(), f"{crd.DEPLOY_PATH} drifted: run `python -m lc2backup.crd_gateway.crd`"
    assert list(yaml.safe_load_all(checked_in)) == [resource.manifest() for resource in crd.RESOURCES]


# The RestoreRequest: its schema (the API server) and RestoreRequestSpec (the restorer's intake) take and refuse
# the same specs. What a restore needs beyond its spec (the backup Succeeded, a live target confirmed) only the
# restorer can tell: such a CR is taken, then Rejected with the reasons (tests/k8s/test_kubectl_restore.py).
RESTORE_BASE: dict[str, Any] = {"backupId": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}
RESTORE_ACCEPTED: dict[str, dict[str, Any]] = {
    "the backup only": dict(RESTORE_BASE),
    "every field": {
        **RESTORE_BASE,
        "target": {"projectId": "retail", "environment": "qa"},
        "include": "database",
        "database": {"instanceId": "liferay-qa", "databaseName": "lportal_qa", "overwrite": {"confirm": "x/y"}},
        "documentLibrary": {"bucket": "liferay-qa", "prefix": "dl/", "merge": True},
        "purpose": "restore",
        "keepFailedHours": 720,
    },
    "a verification": {**RESTORE_BASE, "purpose": "verification", "keepFailedHours": 0},
    "null target": {**RESTORE_BASE, "target": None},
}
RESTORE_REJECTED: dict[str, Any] = {
    "missing backupId": {"include": "all"},
    "backupId not a uuid": {"backupId": "latest"},
    "uppercase backupId": {"backupId": RESTORE_BASE["backupId"].upper()},
    "target without environment": {**RESTORE_BASE, "target": {"projectId": "retail"}},
    "uppercase target project": {**RESTORE_BASE, "target": {"projectId": "Retail", "environment": "qa"}},
    "unknown include": {**RESTORE_BASE, "include": "everything"},
    "unknown purpose": {**RESTORE_BASE, "purpose": "drill"},
    "keepFailedHours above a month": {**RESTORE_BASE, "keepFailedHours": 721},
    "keepFailedHours negative": {**RESTORE_BASE, "keepFailedHours": -1},
    "bad database name": {**RESTORE_BASE, "database": {"databaseName": "1db"}},
    "empty overwrite confirmation": {**RESTORE_BASE, "database": {"overwrite": {"confirm": ""}}},
    "bucket with underscore": {**RESTORE_BASE, "documentLibrary": {"bucket": "bad_bucket"}},
    "prefix with ..": {**RESTORE_BASE, "documentLibrary": {"prefix": "a/../b"}},
    "merge as a string": {**RESTORE_BASE, "documentLibrary": {"merge": "yes"}},
    "spec not an object": ["latest"],
}


def restore_api_server_refuses(raw: Any) -> bool:
    schema = CrdSchema(crd.RESTORE_REQUESTS.openapi_schema())
    obj = {"apiVersion": "backup.liferay.cloud/v1alpha1", "kind": "RestoreRequest", "metadata": {"name": "x"}}
    obj["spec"] = copy.deepcopy(raw)
    schema.prune(obj)
    schema.default(obj)
    return bool(schema.validate(obj))


def restore_pydantic_accepts(raw: Any) -> bool:
    try:
        parse_restore_spec(raw)
    except SpecInvalid:
        return False
    return True


@pytest.mark.parametrize("name", sorted(RESTORE_ACCEPTED))
def test_restore_both_accept(name: str) -> None:
    raw = RESTORE_ACCEPTED[name]
    assert restore_pydantic_accepts(raw)
    assert not restore_api_server_refuses(raw)


@pytest.mark.parametrize("name", sorted(RESTORE_REJECTED))
def test_restore_both_reject(name: str) -> None:
    raw = RESTORE_REJECTED[name]
    assert not restore_pydantic_accepts(raw)
    assert restore_api_server_refuses(raw), f"the API server accepts {name}"


def test_a_restore_request_has_no_rule_but_immutability() -> None:
    rules = crd.RESTORE_REQUESTS.spec_schema()["x-kubernetes-validations"]
    assert rules == [{"rule": "self == oldSelf", "message": crd.RESTORE_REQUESTS.immutable_message}]
