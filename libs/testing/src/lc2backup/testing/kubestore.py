"""The Kubernetes API emulator's object store: the semantics real clients depend on, kept apart from HTTP.

kmock (the HTTP side, ``kubeapi.py``) stores objects as plain merged dicts. Controllers need more, and
this store provides it the way kube-apiserver does:

* a cluster-wide ``resourceVersion`` counter; every write gets the next value, and a write that names a
  stale ``metadata.resourceVersion`` fails with 409;
* ``uid``, ``creationTimestamp`` and ``generation`` (bumped only when something outside ``metadata`` and
  ``status`` changes);
* the ``status`` subresource: writes to the object ignore ``status``, writes to ``/status`` change nothing
  else;
* a bounded change history, so a watch resumes from a resourceVersion, and a resourceVersion older than
  the history (``floor``) is ``410 Gone``, as after etcd compaction;
* a JSON file: a restarted emulator keeps its objects but not its history (like an API server restart,
  after which old resourceVersions may be too old).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import jsonpatch
import jsonpointer

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (resource "group/version/plural", namespace or "", name)


class Admission(Protocol):
    """What a write goes through before it is stored (the CRD's schema and rules, for a custom resource)."""

    def prepare(self, obj: Obj) -> None:
        """Prune and default the incoming object in place; may refuse it (``ApiError``)."""

    def check(self, new: Obj, old: Obj | None) -> None:
        """Refuse ``new`` (``ApiError`` 422) if it is invalid, or an invalid change of ``old``."""


class ApiError(Exception):
    """An error the emulator answers with a ``Status`` document."""

    def __init__(self, code: int, reason: str, message: str, document: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.document = document  # a whole Status (with details and causes) when the caller built one

    def status(self) -> Obj:
        if self.document is not None:
            return self.document
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
        }


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: Obj, ops: Any) -> Obj:
    """RFC 6902 (the ``jsonpatch`` package); a patch that cannot apply is 422, as kube-apiserver answers."""
    try:
        doc = jsonpatch.JsonPatch(ops).apply(target)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, AttributeError) as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    if not isinstance(doc, dict):
        raise ApiError(422, "Invalid", "a patch must leave an object")
    return doc


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _parse_selector(raw: str) -> list[tuple[str, str, str | None]]:
    """``a=b,c!=d,e,!f`` into (key, op, value) terms: op is =, !=, exists or !exists."""
    terms: list[tuple[str, str, str | None]] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if "!=" in part:
            key, value = part.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif part.startswith("!"):
            terms.append((part[1:].strip(), "!exists", None))
        else:
            terms.append((part, "exists", None))
    return terms


def _matches(values: dict[str, str], terms: list[tuple[str, str, str | None]]) -> bool:
    for key, op, value in terms:
        present = key in values
        if (
            (op == "=" and values.get(key) != value)
            or (op == "!=" and values.get(key) == value)
            or (op == "exists" and not present)
            or (op == "!exists" and present)
        ):
            return False
    return True


@dataclass(frozen=True)
class Selector:
    """A list/watch filter: namespace, ``fieldSelector`` on name/namespace, ``labelSelector``."""

    resource: str
    namespace: str | None = None
    field_selector: str = ""
    label_selector: str = ""

    def __call__(self, resource: str, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if resource != self.resource or (self.namespace and meta.get("namespace", "") != self.namespace):
            return False
        fields = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        return _matches(fields, _parse_selector(self.field_selector)) and _matches(
            labels, _parse_selector(self.label_selector)
        )


@dataclass(frozen=True)
class Change:
    resource_version: int
    resource: str
    type: str  # ADDED, MODIFIED, DELETED
    object: Obj


@dataclass
class ObjectStore:
    """Every object of every served resource, with a change history for watches."""

    path: Path | None = None
    history_limit: int = 10_000
    objects: dict[Key, Obj] = field(default_factory=dict)
    resource_version: int = 1
    floor: int = 1  # a watch may resume from any resourceVersion >= floor
    history: deque[Change] = field(default_factory=deque)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    epoch: int = 0  # bumped to end every open watch

    @classmethod
    def load(cls, path: Path | None, history_limit: int = 10_000) -> ObjectStore:
        store = cls(path=path, history_limit=history_limit)
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            store.resource_version = int(saved["resourceVersion"])
            for item in saved["objects"]:
                store.objects[(item["resource"], item["namespace"], item["name"])] = item["object"]
        store.floor = store.resource_version  # history is not kept across restarts
        return store

    def _save(self) -> None:
        if self.path is None:
            return
        doc = {
            "resourceVersion": self.resource_version,
            "objects": [
                {"resource": r, "namespace": ns, "name": n, "object": obj} for (r, ns, n), obj in self.objects.items()
            ],
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    async def _record(self, resource: str, kind: str, obj: Obj) -> Obj:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        self.history.append(Change(self.resource_version, resource, kind, copy.deepcopy(obj)))
        while len(self.history) > self.history_limit:
            self.floor = self.history.popleft().resource_version
        self._save()
        async with self.changed:
            self.changed.notify_all()
        return copy.deepcopy(obj)

    async def compact(self) -> int:
        """Forget the history, as etcd compaction does: older resourceVersions become 410 Gone."""
        self.resource_version += 1  # another resource changed meanwhile: the counter is cluster-wide
        self.floor = self.resource_version
        self.history.clear()
        self._save()
        await self.end_watches()
        return self.resource_version

    async def end_watches(self) -> None:
        self.epoch += 1
        async with self.changed:
            self.changed.notify_all()

    def get(self, key: Key) -> Obj:
        obj = self.objects.get(key)
        if obj is None:
            raise ApiError(404, "NotFound", f'{key[0].rsplit("/", 1)[-1]} "{key[2]}" not found')
        return copy.deepcopy(obj)

    def list(self, selector: Selector) -> list[Obj]:
        found = [obj for (res, _, _), obj in self.objects.items() if selector(res, obj)]
        found.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return copy.deepcopy(found)

    async def create(
        self, resource: str, namespace: str, body: Any, *, has_status: bool, admission: Admission | None = None
    ) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
        if not meta.get("name"):
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        if namespace:
            if meta.get("namespace", namespace) != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object does not match the request")
            meta["namespace"] = namespace
        key = (resource, namespace, meta["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{resource.rsplit("/", 1)[-1]} "{meta["name"]}" already exists')
        if has_status:
            obj.pop("status", None)  # the status subresource is written separately
        if admission is not None:
            admission.prepare(obj)
            admission.check(obj, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        meta.pop("resourceVersion", None)
        self.objects[key] = obj
        return await self._record(resource, "ADDED", obj)

    async def update(
        self,
        key: Key,
        change: Callable[[Obj], Obj],
        *,
        subresource: str | None,
        has_status: bool,
        expected_version: str | None = None,
        admission: Admission | None = None,
    ) -> Obj:
        """Apply ``change`` to the stored object with subresource, generation, admission and conflict rules."""
        old = self.get(key)
        new = change(copy.deepcopy(old))
        if admission is not None:
            admission.prepare(new)
        wanted = expected_version or (new.get("metadata") or {}).get("resourceVersion")
        if wanted and str(wanted) != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {key[0].rsplit("/", 1)[-1]} "{key[2]}": the object has been'
                " modified; please apply your changes to the latest version and try again",
            )
        if subresource == "status":
            result = {**old, "status": new.get("status")} if "status" in new else dict(old)
            if result.get("status") is None:
                result.pop("status", None)
        else:
            result = dict(new)
            if has_status:
                result.pop("status", None)
                if "status" in old:
                    result["status"] = old["status"]
            meta = dict(new.get("metadata") or {})
            for fixed in ("uid", "creationTimestamp", "generation", "name", "namespace", "resourceVersion"):
                if fixed in old["metadata"]:
                    meta[fixed] = old["metadata"][fixed]
                else:
                    meta.pop(fixed, None)
            result["metadata"] = meta
            if _spec_of(result) != _spec_of(old):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if result == old:
            return old  # a no-op write changes nothing, not even the resourceVersion
        if admission is not None:
            admission.check(result, old)
        self.objects[key] = result
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            return await self._remove(key)
        return await self._record(key[0], "MODIFIED", result)

    async def _remove(self, key: Key) -> Obj:
        obj = self.objects.pop(key)
        return await self._record(key[0], "DELETED", obj)

    async def delete(self, key: Key) -> Obj:
        obj = self.get(key)
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                self.objects[key] = obj
                return await self._record(key[0], "MODIFIED", obj)
            return obj
        return await self._remove(key)

    def changes_after(self, resource_version: int, selector: Selector) -> Iterable[Change]:
        if resource_version < self.floor:
            raise ApiError(410, "Expired", f"too old resource version: {resource_version} ({self.floor})")
        return [c for c in self.history if c.resource_version > resource_version and selector(c.resource, c.object)]
