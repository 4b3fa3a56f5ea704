"""The CustomResourceDefinitions (BackupRequest, RestoreRequest), generated from the pydantic models so the two
cannot drift.

``openAPIV3Schema.spec`` is the spec model's ``model_json_schema(by_alias=True)`` made structural: ``$ref``
inlined, ``anyOf [X, null]`` turned into ``nullable``, and what Kubernetes rejects removed (``title``,
``additionalProperties: false``, ``$defs``, ``patternProperties``, ``propertyNames``, ``default: null``). The
cross-field rules (``CEL_RULES`` of the BackupRequest spec) become ``x-kubernetes-validations``; a transition
rule (``self == oldSelf``) makes the spec immutable from creation (one BackupRequest is one backup, one
RestoreRequest one restore): the API server refuses any update that changes it, so crd-gateway never sees a
changed spec.

What the schema cannot say, and where it is enforced instead:

* unknown fields: pydantic forbids them; the API server prunes them, or rejects them under kubectl's
  default ``--validate=strict``;
* tag keys (pattern, 1-63 characters): structural schemas have no ``propertyNames`` and a CEL ``matches``
  over unbounded map keys is too costly for the API server's budget, so crd-gateway rejects them (the CR
  ends ``Rejected`` with the reason);
* what a restore needs from its backup and its targets (the backup Succeeded, a live target confirmed): the
  restorer checks it, and the RestoreRequest ends ``Rejected`` with the reasons.

``openAPIV3Schema.status`` is generated the same way from the status model crd-gateway renders the status with
(``status_model``); as that status is rendered without ``None``, its schema has neither ``nullable`` nor
``default``.

``contracts/crds/`` (one file per CRD) and ``deploy/k8s/base/crd.yaml`` (both) hold the rendered YAML; a test
fails when they drift.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from lc2backup.crd_gateway.status_model import BackupRequestStatus, RestoreRequestStatus, StatusModel
from lc2backup.domain import API_GROUP, API_VERSION, KIND, BackupRequestSpec
from lc2backup.domain.restoring import RESTORE_KIND, RestoreRequestSpec
from lc2backup.domain.spec import CEL_RULES

DEPLOY_PATH = "deploy/k8s/base/crd.yaml"
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
        # copied: a definition inlined twice must not share its lists (YAML would render them as aliases)
        out[key] = copy.deepcopy(value) if key in ("enum", "required", "default") else _resolve(value, defs)
    if "patternProperties" in node:  # a map: the value schema stays, the key pattern moves to the gateway
        (value_schema,) = node["patternProperties"].values()
        out["additionalProperties"] = _resolve(value_schema, defs)
    return out


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


@dataclass(frozen=True)
class CustomResource:
    """One kind crd-gateway serves: its names, the models its CRD is generated from, its printer columns."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    description: str
    spec_model: type[BaseModel]
    status_model: type[StatusModel]
    immutable_message: str
    printer_columns: tuple[dict[str, str], ...]
    cel_rules: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """The CRD's name: ``<plural>.<group>``."""
        return f"{self.plural}.{API_GROUP}"

    @property
    def contract_path(self) -> str:
        return f"contracts/crds/{self.name}.yaml"

    def spec_schema(self) -> dict[str, Any]:
        """The spec's structural schema with its CEL rules (also used by the schema-parity tests)."""
        raw = self.spec_model.model_json_schema(by_alias=True)
        schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
        rules = [*self.cel_rules, ("self == oldSelf", self.immutable_message)]
        schema["x-kubernetes-validations"] = [{"rule": rule, "message": message} for rule, message in rules]
        return schema

    def status_schema(self) -> dict[str, Any]:
        """The status's structural schema, from the model crd-gateway renders the status with."""
        raw = self.status_model.model_json_schema(by_alias=True, mode="serialization")
        schema: dict[str, Any] = _without_nulls(_resolve(raw, raw.get("$defs", {})))
        return schema

    def manifest(self) -> dict[str, Any]:
        """The CustomResourceDefinition as a dict (apiextensions.k8s.io/v1)."""
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/part-of": "lc2backup"}},
            "spec": {
                "group": API_GROUP,
                "scope": "Namespaced",
                "names": {
                    "kind": self.kind,
                    "listKind": f"{self.kind}List",
                    "plural": self.plural,
                    "singular": self.singular,
                    "shortNames": list(self.short_names),
                    "categories": ["lc2backup"],
                },
                "versions": [
                    {
                        "name": API_VERSION,
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "additionalPrinterColumns": copy.deepcopy(list(self.printer_columns)),
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "description": self.description,
                                "required": ["spec"],
                                "properties": {
                                    "apiVersion": {"type": "string"},
                                    "kind": {"type": "string"},
                                    "metadata": {"type": "object"},
                                    "spec": self.spec_schema(),
                                    "status": self.status_schema(),
                                },
                            }
                        },
                    }
                ],
            },
        }

    def openapi_schema(self) -> dict[str, Any]:
        """``openAPIV3Schema`` of the one served version."""
        schema: dict[str, Any] = self.manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        return schema

    def yaml(self) -> str:
        """The rendered CRD, as checked into ``contracts/crds/``."""
        model = f"{self.spec_model.__module__}.{self.spec_model.__qualname__}"
        header = f"# Generated from {model} by lc2backup.crd_gateway.crd: do not edit.\n"
        return header + yaml.safe_dump(self.manifest(), sort_keys=False, width=120)


BACKUP_REQUESTS = CustomResource(
    kind=KIND,
    plural="backuprequests",
    singular="backuprequest",
    short_names=("br",),
    description="A request to back up one Liferay environment (database and document library)",
    spec_model=BackupRequestSpec,
    status_model=BackupRequestStatus,
    cel_rules=tuple(CEL_RULES),
    immutable_message="spec is immutable: one BackupRequest is one backup; create a new BackupRequest instead",
    printer_columns=(
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
        {"name": "Project", "type": "string", "jsonPath": ".spec.projectId"},
        {"name": "Environment", "type": "string", "jsonPath": ".spec.environment"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Message", "type": "string", "jsonPath": ".status.message"},
    ),
)
RESTORE_REQUESTS = CustomResource(
    kind=RESTORE_KIND,
    plural="restorerequests",
    singular="restorerequest",
    short_names=("rr",),
    description="A request to restore (or verify) one Succeeded backup into new targets, or over confirmed live ones",
    spec_model=RestoreRequestSpec,
    status_model=RestoreRequestStatus,
    immutable_message="spec is immutable: one RestoreRequest is one restore; create a new RestoreRequest instead",
    printer_columns=(
        {"name": "Backup", "type": "string", "jsonPath": ".spec.backupId"},
        {"name": "Target", "type": "string", "jsonPath": ".status.target"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Message", "type": "string", "jsonPath": ".status.message"},
    ),
)
RESOURCES: tuple[CustomResource, ...] = (BACKUP_REQUESTS, RESTORE_REQUESTS)


def deploy_yaml() -> str:
    """Every CRD in one file, as installed by ``deploy/k8s/base``."""
    return "---\n".join(resource.yaml() for resource in RESOURCES)


def write(root: Path) -> list[Path]:
    """Render the CRDs into the repository (``contracts/`` is also written by ``lc2backup.contracts``)."""
    rendered = {resource.contract_path: resource.yaml() for resource in RESOURCES} | {DEPLOY_PATH: deploy_yaml()}
    written = []
    for relative, text in rendered.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


if __name__ == "__main__":  # python -m lc2backup.crd_gateway.crd [repository root]
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        sys.stdout.write(f"wrote {path}\n")
