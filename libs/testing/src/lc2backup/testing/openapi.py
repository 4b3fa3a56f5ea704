"""The emulator's ``/openapi/v3``: each served custom resource's schema, as kube-apiserver publishes a CRD.

``kubectl apply --validate=strict`` (its default) reads ``/openapi/v3``, finds the group-version's document,
and looks for a PATCH operation tagged with the kind's ``x-kubernetes-group-version-kind`` that accepts the
``fieldValidation`` query parameter. Found, kubectl leaves validation to the server and sends
``?fieldValidation=Strict``; the emulator then refuses unknown fields and checks the CRD's schema and rules.
Not found, kubectl would fail or validate on its own, which is not what a real cluster does.

The documents carry what those clients read: paths with their operations, parameters and request content
types (no strategic merge patch, as for any custom resource), and the object schema under
``components.schemas`` named as kube-apiserver names it (reversed group, version, kind).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lc2backup.testing.kubeapi import Served

Obj = dict[str, Any]
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


def _group_version_path(served: Served) -> str:
    return f"apis/{served.group}/{served.version}" if served.group else "api/v1"


def _schema_name(served: Served, suffix: str = "") -> str:
    group = ".".join(reversed(served.group.split("."))) if served.group else "io.k8s.api.core"
    return f"{group}.{served.version}.{served.kind}{suffix}"


def _ref(name: str) -> Obj:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str) -> Obj:
    return {"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": True}}


def _operations(served: Served) -> dict[str, Obj]:
    gvk = {"group": served.group, "version": served.version, "kind": served.kind}
    obj = {"application/json": {"schema": _ref(_schema_name(served))}}
    write_params = [
        _query("dryRun", "When present, modifications are not persisted"),
        _query("fieldManager", "The name of the actor making these changes"),
        _query("fieldValidation", "Ignore, Warn or Strict: what to do with unknown or duplicate fields"),
    ]

    def op(action: str, **extra: Any) -> Obj:
        return {
            "operationId": f"{action}{served.kind}",
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "responses": {"200": {"description": "OK", "content": obj}},
            **extra,
        }

    patch_body = {"content": {t: {"schema": {"type": "object"}} for t in PATCH_TYPES}, "required": True}
    prefix = f"/{_group_version_path(served)}/" + ("namespaces/{namespace}/" if served.namespaced else "")
    collection = prefix + served.plural
    one = collection + "/{name}"
    paths: dict[str, Obj] = {
        collection: {
            "get": op(
                "list",
                responses={"200": {"content": {"application/json": {"schema": _ref(_schema_name(served, "List"))}}}},
            ),
            "post": op("post", parameters=write_params, requestBody={"content": obj, "required": True}),
        },
        one: {
            "get": op("get"),
            "put": op("put", parameters=write_params, requestBody={"content": obj, "required": True}),
            "patch": op("patch", parameters=[*write_params, _query("force", "Force an apply")], requestBody=patch_body),
            "delete": op("delete"),
        },
    }
    if served.has_status:
        paths[one + "/status"] = {
            "get": op("get"),
            "put": op("put", parameters=write_params, requestBody={"content": obj, "required": True}),
            "patch": op("patch", parameters=write_params, requestBody=patch_body),
        }
    return paths


def openapi_v3_document(served: list[Served]) -> Obj:
    """The OpenAPI 3.0 document of one group-version."""
    paths: dict[str, Obj] = {}
    schemas: dict[str, Obj] = {}
    for s in served:
        paths.update(_operations(s))
        gvk = [{"group": s.group, "version": s.version, "kind": s.kind}]
        schema: Obj = copy.deepcopy(s.schema.schema) if s.schema is not None else {"type": "object"}
        schema.setdefault("properties", {})["metadata"] = {"type": "object", "description": "Standard object metadata"}
        schemas[_schema_name(s)] = {**schema, "x-kubernetes-group-version-kind": gvk}
        list_gvk = [{**gvk[0], "kind": f"{s.kind}List"}]
        schemas[_schema_name(s, "List")] = {
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "items": {"type": "array", "items": _ref(_schema_name(s))},
            },
            "x-kubernetes-group-version-kind": list_gvk,
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_v3_index(served: list[Served]) -> Obj:
    """``/openapi/v3``: where each group-version's document is, with a hash as kube-apiserver adds one."""
    groups: dict[str, list[Served]] = {}
    for s in served:
        groups.setdefault(_group_version_path(s), []).append(s)
    paths = {}
    for path, members in sorted(groups.items()):
        digest = hashlib.sha512(json.dumps(openapi_v3_document(members), sort_keys=True).encode()).hexdigest()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest[:128].upper()}"}
    return {"paths": paths}
