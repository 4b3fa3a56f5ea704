"""The BackupRequest CustomResourceDefinition, generated from the pydantic spec so the two cannot drift.

``openAPIV3Schema.spec`` is ``BackupRequestSpec.model_json_schema(by_alias=True)`` made structural: ``$ref``
inlined, ``anyOf [X, null]`` turned into ``nullable``, and what Kubernetes rejects removed (``title``,
``additionalProperties: false``, ``$defs``, ``patternProperties``, ``propertyNames``, ``default: null``). The
cross-field rules of ``CEL_RULES`` become ``x-kubernetes-validations``; a transition rule (``self == oldSelf``)
makes the spec immutable from creation (one BackupRequest is one backup): the API server refuses any update
that changes it, so crd-gateway never sees a changed spec.

What the schema cannot say, and where it is enforced instead:

* unknown fields: pydantic forbids them; the API server prunes them, or rejects them under kubectl's
  default ``--validate=strict``;
* tag keys (pattern, 1-63 characters): structural schemas have no ``propertyNames`` and a CEL ``matches``
  over unbounded map keys is too costly for the API server's budget, so crd-gateway rejects them (the CR
  ends ``Rejected`` with the reason).

``openAPIV3Schema.status`` is generated the same way from ``BackupRequestStatus`` (``status_model``), the model
crd-gateway renders the status with; as that status is rendered without ``None``, its schema has neither
``nullable`` nor ``default``.

``contracts/crds/`` and ``deploy/k8s/base/crd.yaml`` hold the rendered YAML; a test fails when they drift.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from lc2backup.crd_gateway.status_model import BackupRequestStatus
from lc2backup.domain import API_GROUP, API_VERSION, KIND, BackupRequestSpec
from lc2backup.domain.spec import CEL_RULES

PLURAL = "backuprequests"
SINGULAR = "backuprequest"
SHORT_NAMES = ["br"]
CRD_NAME = f"{PLURAL}.{API_GROUP}"
CONTRACT_PATH = f"contracts/crds/{CRD_NAME}.yaml"
DEPLOY_PATH = "deploy/k8s/base/crd.yaml"

IMMUTABLE_MESSAGE = "spec is immutable: one BackupRequest is one backup; create a new BackupRequest instead"
_DROP = {"title", "$defs", "propertyNames", "patternProperties", "if", "then", "else"}  # if/then/else: CEL rules here


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref`` and strip what a structural schema may not contain."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **extra}, defs)
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of and len(any_of) == 2:
        (other,) = [option for option in any_of if option != {"type": "null"}]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _resolve({**other, **rest, "nullable": True}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or (key == "additionalProperties" and value is False):
            continue
        if key == "default" and value is None:
            continue
        out[key] = value if key in ("enum", "required", "default") else _resolve(value, defs)
    if "patternProperties" in node:  # a map: the value schema stays, the key pattern moves to the gateway
        (value_schema,) = node["patternProperties"].values()
        out["additionalProperties"] = _resolve(value_schema, defs)
    return out


def spec_schema() -> dict[str, Any]:
    """The spec's structural schema with its CEL rules (also used by the schema-parity test)."""
    raw = BackupRequestSpec.model_json_schema(by_alias=True)
    schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
    schema["x-kubernetes-validations"] = [{"rule": rule, "message": message} for rule, message in CEL_RULES] + [
        {"rule": "self == oldSelf", "message": IMMUTABLE_MESSAGE}
    ]
    return schema


def _without_nulls(node: Any) -> Any:
    """The status is rendered without ``None`` and Kubernetes fills nothing in: no ``nullable``, no
    ``default``; integers are ``int64`` as Kubernetes types them."""
    if isinstance(node, list):
        return [_without_nulls(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "default"):
            continue
        if key == "properties":
            out[key] = {name: _without_nulls(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = _without_nulls(value)
        else:
            out[key] = value
    if out.get("type") == "integer":
        out.setdefault("format", "int64")
    return out


def status_schema() -> dict[str, Any]:
    """The status's structural schema, from the model crd-gateway renders the status with."""
    raw = BackupRequestStatus.model_json_schema(by_alias=True, mode="serialization")
    schema: dict[str, Any] = _without_nulls(_resolve(raw, raw.get("$defs", {})))
    return schema


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "State", "type": "string", "jsonPath": ".status.state"},
    {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
    {"name": "Project", "type": "string", "jsonPath": ".spec.projectId"},
    {"name": "Environment", "type": "string", "jsonPath": ".spec.environment"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message"},
]


def crd_manifest() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict (apiextensions.k8s.io/v1)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "lc2backup"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["lc2backup"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A request to back up one Liferay environment (database and document library)",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The rendered CRD, as checked into ``contracts/crds/`` and ``deploy/k8s/base/``."""
    header = "# Generated from lc2backup.domain.BackupRequestSpec by lc2backup.crd_gateway.crd: do not edit.\n"
    return header + yaml.safe_dump(crd_manifest(), sort_keys=False, width=120)


def write(root: Path) -> list[Path]:
    """Render the CRD into the repository (``contracts/`` is also written by ``lc2backup.contracts``)."""
    written = []
    for relative in (CONTRACT_PATH, DEPLOY_PATH):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(crd_yaml())
        written.append(target)
    return written


if __name__ == "__main__":  # python -m lc2backup.crd_gateway.crd [repository root]
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        sys.stdout.write(f"wrote {path}\n")
