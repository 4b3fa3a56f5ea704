"""The Kubernetes API emulator process: kmock's server and discovery, with object semantics real clients need.

Run as ``python -m lc2backup.testing.kubeapi --port P --state FILE --crd CRD.yaml``; ``KubeEmulator`` in
``kube.py`` starts it. kmock (PyPI) provides the aiohttp server, request parsing, API discovery and error
documents; this module uses its public API only: reactions registered with ``emulator[criteria] << ...``,
``kmock.Request``, ``kmock.ResourceInfo`` and ``kmock.KubernetesError`` (rendered as a ``Status``). Its
stateful emulator is not enough for a controller and ``kubectl`` (``reference/local-components.md`` §6), so
served resources are handled here, on ``kubestore.ObjectStore``:

* create answers 201; lists have ``kind``/``apiVersion``/``resourceVersion``; ``watch=True`` is a watch;
* watch streams are ``application/json``, resume from ``resourceVersion``, answer ``410 Gone`` below the
  history floor, honour ``timeoutSeconds`` and ``fieldSelector``/``labelSelector``, and send ``BOOKMARK``
  events to a quiet stream when the client sends ``allowWatchBookmarks=true``;
* merge patch, JSON patch (the ``jsonpatch`` package), server-side apply (approximated as a merge) and PUT,
  with 409 on a stale ``resourceVersion``; strategic merge patch is 415, as for custom resources;
* a CRD's resources go through its schema and CEL rules on every write (``kubeschema.py``: pruning, or 400
  under ``fieldValidation=Strict``; defaults; ``422 Invalid`` with causes), and ``/openapi/v3`` publishes
  the schema (``openapi.py``), so ``kubectl apply`` validates on the server as against a real cluster;
* ``Table`` output with the CRD's printer columns, so ``kubectl get br`` shows State, Provider, ...;
* discovery lists the core group as ``v1`` and subresources without short names (kubectl warns otherwise).

kmock keeps every request and every error it served for assertions; this process lives for one test, so
that is bounded.

Test hooks (not Kubernetes API): ``POST /_emulator/compact`` forgets the history and ends every watch, so
the next resume is 410 Gone; ``POST /_emulator/drop-watches`` ends every watch stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kmock
import yaml

from lc2backup.testing.kubeschema import CrdSchema, invalid, name_errors
from lc2backup.testing.kubestore import ApiError, Key, Obj, ObjectStore, Selector, json_patch, merge_patch
from lc2backup.testing.openapi import openapi_v3_document, openapi_v3_index

log = logging.getLogger("kubeapi")

TRUE = ("true", "True", "1")


@dataclass(frozen=True)
class Served:
    """A resource whose objects the emulator keeps (a CRD's, or a built-in one such as events)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    columns: tuple[dict[str, Any], ...] = ()
    schema: CrdSchema | None = field(default=None, compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @classmethod
    def from_crd(cls, crd: Obj) -> list[Served]:
        spec, names = crd["spec"], crd["spec"]["names"]
        return [
            cls(
                group=spec["group"],
                version=v["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames", [])),
                has_status="status" in (v.get("subresources") or {}),
                columns=tuple(v.get("additionalPrinterColumns", [])),
                schema=CrdSchema(v["schema"]["openAPIV3Schema"]) if "schema" in v else None,
            )
            for v in spec["versions"]
            if v.get("served", True)
        ]


@dataclass
class SchemaAdmission:
    """The CRD's schema and CEL rules on one write (``kubestore.Admission``), as kube-apiserver applies them."""

    served: Served
    schema: CrdSchema
    name: str
    strict: bool  # ?fieldValidation=Strict: an unknown field is an error instead of being dropped

    def prepare(self, obj: Obj) -> None:
        unknown = self.schema.prune(obj)
        if unknown and self.strict:
            fields = ", ".join(f'unknown field "{path}"' for path in unknown)
            kind, version = self.served.kind, self.served.version
            message = f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {fields}'
            raise ApiError(400, "BadRequest", message)
        self.schema.default(obj)

    def check(self, new: Obj, old: Obj | None) -> None:
        errors = self.schema.validate(new, old)
        if old is None:  # the name is fixed at creation
            errors = name_errors(str((new.get("metadata") or {}).get("name", ""))) + errors
        if errors:
            name = (new.get("metadata") or {}).get("name") or self.name
            document = invalid(self.served.kind, self.served.group, name, errors)
            raise ApiError(422, "Invalid", document["message"], document)


JSON = {"Content-Type": "application/json"}  # also for watch streams: client-go picks its decoder by it


def refusal(code: int, reason: str, message: str, details: Obj) -> kmock.KubernetesError:
    """A refusal as kube-apiserver answers it: kmock renders a ``KubernetesError`` as a ``Status`` document."""
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details)


CORE_EVENTS = Served(group="", version="v1", plural="events", kind="Event", short_names=("ev",))
VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}


def _age(timestamp: str) -> str:
    """The human-readable age kube-apiserver puts in ``date`` columns."""
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    seconds = max(int((datetime.now(UTC) - then).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= 120):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _jsonpath(obj: Any, path: str) -> Any:
    for part in path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


class Emulator(kmock.KubernetesScaffold):
    """kmock's scaffold (discovery, errors, HTTP) plus stateful served resources."""

    def __init__(self, store: ObjectStore, served: list[Served], bookmark_seconds: float = 60.0) -> None:
        super().__init__()
        self.store = store
        self.bookmark_seconds = bookmark_seconds
        self.served = {s.key: s for s in served}
        for s in served:
            self.resources[s.key] = kmock.ResourceInfo(
                kind=s.kind,
                namespaced=s.namespaced,
                shortnames=set(s.short_names),
                verbs=VERBS,
                subresources={"status"} if s.has_status else set(),
            )
            resource = kmock.resource(s.group, s.version, s.plural)
            for method in ("get", "put", "patch", "delete"):
                self[method, resource] << JSON << self._respond
            self["post", resource] << 201 << JSON << self._respond  # a create answers 201 Created
        # kmock's DSL: these reactions come before the scaffold's fallbacks (discovery, 404 Status)
        self["get", re.compile(r"/apis/[^/]+/[^/]+/?")] << self._serve_version
        self["get", re.compile(r"/api/v1/?")] << self._serve_version
        self["get", re.compile(r"/openapi/v3(/.*)?")] << JSON << self._openapi
        self["post", re.compile(r"/_emulator/.*")] << JSON << self._admin
        self.stopping = False

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        """Discovery of one group-version: kmock's lists the core group as ``v1`` and no short names."""
        parts = request.url.path.strip("/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        resources: list[Obj] = []
        for s in self.served.values():
            if (s.group, s.version) != (group, version):
                continue
            entry = {"name": s.plural, "singularName": s.kind.lower(), "kind": s.kind, "namespaced": s.namespaced}
            resources.append({**entry, "shortNames": list(s.short_names), "verbs": sorted(VERBS)})
            if s.has_status:
                resources.append({**entry, "name": f"{s.plural}/status", "verbs": ["get", "patch", "update"]})
        if not resources and group:
            raise kmock.KubernetesResourceNotFoundError()
        return {
            "apiVersion": "v1",
            "kind": "APIResourceList",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    async def _respond(self, request: kmock.Request) -> kmock.Payload:
        """Every request for a served resource: the store's semantics, errors as ``Status`` documents."""
        served = self._served_for(request)
        assert served is not None  # the reaction is registered per served resource
        try:
            return await self._serve(request, served)
        except ApiError as exc:
            status = exc.status()
            details = status.get("details") or {
                "name": request.name or "",
                "group": served.group,
                "kind": served.plural,
            }
            raise refusal(exc.code, exc.reason, exc.message, details) from None

    def _served_for(self, request: kmock.Request) -> Served | None:
        r = request.resource
        if r is None or r.plural is None:
            return None
        return self.served.get(f"{r.group or ''}/{r.version}/{r.plural}")

    def _openapi(self, request: kmock.Request) -> kmock.Payload:
        """OpenAPI v3 as kube-apiserver publishes it: an index, then one document per group-version."""
        path = request.url.path.rstrip("/")
        if path == "/openapi/v3":
            return openapi_v3_index(self._published())
        group_version = path.removeprefix("/openapi/v3/")
        served = [s for s in self._published() if f"apis/{s.api_version}" == group_version]
        if not served:
            raise refusal(404, "NotFound", f"no OpenAPI document for {group_version}", {"name": group_version})
        return openapi_v3_document(served)

    def _published(self) -> list[Served]:
        return [s for s in self.served.values() if s.schema is not None]  # CRDs; the core group is not emulated

    def _admission(self, request: kmock.Request, served: Served, name: str) -> SchemaAdmission | None:
        if served.schema is None:
            return None
        strict = request.params.get("fieldValidation", "") == "Strict"
        return SchemaAdmission(served, served.schema, name, strict)

    async def _admin(self, request: kmock.Request) -> kmock.Payload:
        path = request.url.path
        if path == "/_emulator/compact":
            return {"resourceVersion": str(await self.store.compact())}
        if path == "/_emulator/drop-watches":
            await self.store.end_watches()
            return {"dropped": True}
        raise refusal(404, "NotFound", f"no emulator hook {path}", {"name": path})

    async def _serve(self, request: kmock.Request, served: Served) -> kmock.Payload:
        ns = request.namespace or ""
        if served.namespaced is False:
            ns = ""
        method = str(request.method.value).upper()
        params = request.params
        if request.name is None:
            if method == "GET" and params.get("watch") in TRUE:
                return self._watch(request, served, ns)
            if method == "GET":
                return self._list(request, served, ns)
            if method == "POST":
                body = request.data
                name = (body.get("metadata") or {}).get("name", "") if isinstance(body, dict) else ""
                created = await self.store.create(
                    served.key,
                    ns,
                    body,
                    has_status=served.has_status,
                    admission=self._admission(request, served, name),
                )
                return created
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        key: Key = (served.key, ns, request.name)
        sub = request.subresource
        if sub not in (None, "status") or (sub == "status" and not served.has_status):
            raise ApiError(404, "NotFound", f"no subresource {sub}")
        if method == "GET":
            return self._one(request, served, self.store.get(key))
        if method == "DELETE":
            return await self.store.delete(key)
        admission = self._admission(request, served, request.name)
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "application/merge-patch+json").split(";")[0]
            body = self._patch_body(request, content_type)
            if content_type == "application/json-patch+json":
                if not isinstance(body, list):
                    raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
                updated = await self.store.update(
                    key,
                    lambda o: json_patch(o, body),
                    subresource=sub,
                    has_status=served.has_status,
                    admission=admission,
                )
            else:
                updated = await self.store.update(
                    key,
                    lambda o: merge_patch(o, body),
                    subresource=sub,
                    has_status=served.has_status,
                    admission=admission,
                )
            return updated
        if method == "PUT":
            body = request.data
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body must be a JSON object")
            updated = await self.store.update(
                key, lambda o: dict(body), subresource=sub, has_status=served.has_status, admission=admission
            )
            return updated
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    @staticmethod
    def _patch_body(request: kmock.Request, content_type: str) -> Any:
        if content_type == "application/strategic-merge-patch+json":
            raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources")
        if content_type == "application/apply-patch+yaml":
            return yaml.safe_load(request.text)
        return request.data

    @staticmethod
    def _wants_table(request: kmock.Request) -> bool:
        return "as=Table" in request.headers.get("Accept", "")

    def _table(self, request: kmock.Request, served: Served, items: list[Obj], rv: str) -> Obj:
        columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
        columns += [
            {
                "name": c["name"],
                "type": "string" if c.get("type") == "date" else c.get("type", "string"),
                "format": "",
                "description": c.get("description", ""),
                "priority": c.get("priority", 0),
            }
            for c in served.columns or ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)
        ]
        include = request.params.get("includeObject", "PartialObjectMetadata")
        rows = []
        for obj in items:
            cells: list[Any] = [obj["metadata"]["name"]]
            for c in served.columns or ({"type": "date", "jsonPath": ".metadata.creationTimestamp"},):
                value = _jsonpath(obj, c["jsonPath"])
                cells.append(_age(value) if c.get("type") == "date" and isinstance(value, str) else value)
            row: Obj = {"cells": cells}
            if include == "Object":
                row["object"] = obj
            elif include != "None":
                meta = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}
                row["object"] = {**meta, "metadata": obj["metadata"]}
            rows.append(row)
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": columns,
            "rows": rows,
        }

    def _one(self, request: kmock.Request, served: Served, obj: Obj) -> kmock.Payload:
        if self._wants_table(request):
            return self._table(request, served, [obj], obj["metadata"]["resourceVersion"])
        return obj

    def _selector(self, request: kmock.Request, served: Served, ns: str) -> Selector:
        return Selector(
            served.key,
            ns or None,
            request.params.get("fieldSelector", ""),
            request.params.get("labelSelector", ""),
        )

    def _list(self, request: kmock.Request, served: Served, ns: str) -> kmock.Payload:
        items = self.store.list(self._selector(request, served, ns))
        rv = str(self.store.resource_version)
        if self._wants_table(request):
            return self._table(request, served, items, rv)
        return {
            "apiVersion": served.api_version,
            "kind": f"{served.kind}List",
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def _watch(self, request: kmock.Request, served: Served, ns: str) -> kmock.Payload:
        """A watch is a kmock stream: one JSON document per line, until ``timeoutSeconds`` or a hook ends it."""
        selector = self._selector(request, served, ns)
        timeout = float(request.params.get("timeoutSeconds") or 0) or None

        async def lines() -> AsyncIterator[bytes]:
            yield b""  # kmock starts the response at the first chunk; a quiet watch is still a 200 stream
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    async for event in self._events(request, served, selector):
                        yield json.dumps(event).encode() + b"\n"

        return lines()

    async def _events(self, request: kmock.Request, served: Served, selector: Selector) -> AsyncIterator[Obj]:
        store = self.store
        epoch = store.epoch
        bookmarks = request.params.get("allowWatchBookmarks") in TRUE
        since = request.params.get("resourceVersion") or "0"
        if since == "0" or request.params.get("sendInitialEvents") in TRUE:
            cursor = store.resource_version  # no position: the current state as ADDED, then every change
            for obj in store.list(selector):
                yield {"type": "ADDED", "object": obj}
            if bookmarks and request.params.get("sendInitialEvents") in TRUE:
                yield self._bookmark(served, cursor, initial_events_end=True)
        else:
            cursor = int(since)
            try:
                store.changes_after(cursor, selector)
            except ApiError as gone:
                yield {"type": "ERROR", "object": gone.status()}
                return
        last_sent = asyncio.get_running_loop().time()
        # a client that went away is noticed at the next write (kmock ends the stream on ConnectionError)
        while not self.stopping and store.epoch == epoch:
            latest = store.resource_version  # no await between this and the snapshot of changes
            try:
                changes = list(store.changes_after(cursor, selector))
            except ApiError as gone:  # the history moved past us while we were slow
                yield {"type": "ERROR", "object": gone.status()}
                return
            cursor = latest
            for change in changes:
                yield {"type": change.type, "object": change.object}
            now = asyncio.get_running_loop().time()
            if changes:
                last_sent = now
            elif bookmarks and now - last_sent >= self.bookmark_seconds:
                # a quiet stream still moves the client's resourceVersion forward (kube-apiserver's bookmarks)
                yield self._bookmark(served, cursor)
                last_sent = now
            async with store.changed:
                if store.resource_version == cursor:
                    wait = min(1.0, self.bookmark_seconds) if bookmarks else 1.0
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(store.changed.wait(), wait)

    @staticmethod
    def _bookmark(served: Served, resource_version: int, initial_events_end: bool = False) -> Obj:
        """A BOOKMARK carries only the resourceVersion (and, after the initial events, an annotation)."""
        meta: Obj = {"resourceVersion": str(resource_version)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"type": "BOOKMARK", "object": {"kind": served.kind, "apiVersion": served.api_version, "metadata": meta}}


def _load_crds(paths: list[Path]) -> list[Served]:
    served: list[Served] = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                served.extend(Served.from_crd(doc))
    return served


async def serve(
    host: str, port: int, state: Path | None, crds: list[Path], history: int, bookmark_seconds: float
) -> None:
    store = ObjectStore.load(state, history)
    emulator = Emulator(store, [*_load_crds(crds), CORE_EVENTS], bookmark_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with emulator, kmock.Server(emulator, host=host, port=port) as server:
        log.info("kubeapi listening on http://%s:%d (resourceVersion %d)", host, server.port, store.resource_version)
        await stop.wait()
        emulator.stopping = True  # end every watch stream before the server waits for its handlers
        await store.end_watches()


def main() -> None:
    parser = argparse.ArgumentParser(description="Kubernetes API emulator (kmock + object semantics)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, default=None, help="JSON file keeping objects across restarts")
    parser.add_argument("--crd", type=Path, action="append", default=[], help="CRD YAML to serve (repeatable)")
    parser.add_argument("--history", type=int, default=10_000, help="changes kept for watch resumption")
    parser.add_argument("--bookmark-seconds", type=float, default=60.0, help="quiet time before a watch BOOKMARK")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s kubeapi %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.state, args.crd, args.history, args.bookmark_seconds))


if __name__ == "__main__":
    main()
