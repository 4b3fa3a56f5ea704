"""A local Azure Resource Manager for the backup and restore calls of Azure Database for PostgreSQL and MySQL
flexible server.

The real management clients talk to it unchanged: ``azure.mgmt.postgresqlflexibleservers.aio`` (3.0.0,
api-version 2026-10-01) and ``azure.mgmt.mysqlflexibleservers.aio`` (1.0.0, api-version 2024-12-30), built with
``base_url=<endpoint>`` and ``connection_verify=<ca file>``. It serves HTTPS only (azure-core refuses bearer
tokens over http) and binds 127.0.0.1.

Wire format kept from ARM:
- Every request needs ``api-version`` (400 ``MissingApiVersionParameter``; any value is accepted) and a bearer
  token whose ``aud`` is https://management.azure.com, ``iss`` is ``tokens.ISSUER`` and ``exp`` is in the future
  (401 ``InvalidAuthenticationToken``); the signature is not checked (``tokens.py`` mints unsigned tokens).
- Errors are ``{"error": {"code", "message"}}``. Long-running operations answer 202 with absolute
  ``Azure-AsyncOperation`` (``.../locations/{loc}/azureAsyncOperation/{id}``) and ``Location``
  (``.../locations/{loc}/operationResults/{id}``) URLs and ``Retry-After: 0``. The async URL answers
  ``{"name", "status": InProgress|Succeeded|Failed, "startTime", "endTime", "percentComplete", "error"}``; the
  Location URL answers 202 while the operation runs, then 200 with the same document plus the result's
  ``properties`` (what the pollers of the POST actions read as the final result, and what MySQL's
  ``operation_results.get`` returns).
- Throttling on demand: the next N authenticated requests answer 429 ``TooManyRequests`` with ``Retry-After``.

PostgreSQL (``Microsoft.DBforPostgreSQL/flexibleServers``):
- ``PUT backups/{name}`` (no body) starts an on-demand backup, idempotent by name: a PUT of a known name (running,
  done or failed) answers with the same operation and starts nothing. ``GET backups/{name}`` is 404 until the
  backup succeeded, then the resource (``properties.backupType`` ``Customer On-Demand``: the SDK's enum value).
  Nothing is copied anywhere: an on-demand backup is a snapshot inside Azure.
- ``POST ltrPreBackup`` answers ``{"properties": {"numberOfContainers": 1}}``.
- ``POST startLtrBackup`` checks each SAS URL at request time: https to the configured blob account, a container
  (``sr=c``), permissions only from ``a``/``c``/``w`` (read, list, delete... are refused by name), ``se`` in the
  future and at most 24 h away, a ``sig``. The signature itself is NOT verified: Azurite 3.35 cannot validate the
  newest SAS service version, so the fake writes with its own token (``mint_token(STORAGE)``), not with the SAS.
  While the operation runs it writes a real ``pg_dump -Fc --no-owner --no-privileges`` of each database of the
  server to the SAS's container as ``<backupName>/<database>.dump`` (never overwriting: an existing blob fails the
  operation). ``GET ltrBackupOperations/{name}`` shows ``status`` Running|Succeeded|Failed and
  ``percentComplete`` 0 -> 50 -> 100. A second start of a known ``backupName`` answers with the existing operation
  and writes nothing (a client retrying the POST after a lost answer is then safe; Azure documents no behaviour).
- MySQL (``Microsoft.DBforMySQL/flexibleServers``): ``PUT backupsV2/{name}`` (idempotent as above; ``GET`` shows
  ``provisioningState`` Creating|Succeeded|Failed), ``POST validateBackup`` (``numberOfContainers`` 1) and
  ``POST backupAndExport`` (SAS checked the same way; a known ``backupName`` answers its operation). There
  is no MySQL server here: the export writes ``<backupName>/STAND-IN-NO-MYSQL.txt`` saying so, nothing else.

Servers (``PUT``/``GET``/``DELETE flexibleServers/{name}``, both engines):
- ``PUT`` creates a server by ``properties.createMode: PointInTimeRestore`` only (others: 400
  ``InvalidParameterValue``), with ``location``, ``properties.sourceServerResourceId`` (a server of the same engine
  registered here, else 404 ``ResourceNotFound`` naming it) and the point in time (PostgreSQL
  ``properties.pointInTimeUTC``, MySQL ``properties.restorePointInTime``; RFC 3339, not in the future, else 400
  ``InvalidParameterValue``); ``tags`` are kept. It answers 202 with the operation's URLs (as above) and the server
  exists from then on with ``properties.state`` ``Provisioning``, ``Ready`` once the operation succeeded; a failed
  create (``fail_next("restore", ...)``) leaves no server. Every PUT naming a server is counted per server id
  (``createRequests``), also the refused ones; a PUT naming an existing server is refused 409
  ``ServerAlreadyExists`` and creates nothing (this fake updates no server).
- While it runs, a PostgreSQL restore makes a **real copy** of each database of the source server on the same
  PostgreSQL (``pg_dump`` into ``pg_restore``, as the source is now, not as it was at the point in time: the fake
  keeps no history), named ``<database>_<server>`` (``databaseCopies`` in the state); a MySQL restore copies
  nothing (there is no MySQL server here).
- ``GET`` answers the resource with ``tags``, ``properties.state`` and, for a restored server,
  ``properties.sourceServerResourceId``; never the point in time (create-only in the API, as in the SDKs' models).
- ``DELETE`` answers 202 with an operation (204 when there is no such server); the server is ``Dropping`` until it
  ends, then gone, with the copies the fake made dropped.

Test control under ``/_fake/`` (no token): register servers, seconds per operation, hold (no operation finishes),
failure injection, throttling, state with counts, create requests per server and every SAS received, reset.
``FakeResourceManager`` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import ssl
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.probes import tcp_open
from lc2backup.devstack.servers import LoopbackServer, call_json
from lc2backup.testing.azure.certs import TlsFiles
from lc2backup.testing.azure.tokens import ISSUER, MANAGEMENT, mint_token, token_claims
from lc2backup.testing.dumps import DumpFailed, copy_database, drop_database, pg_dump_bytes

log = logging.getLogger("lc2backup.testing.azure.arm")

Obj = dict[str, Any]

PG = "Microsoft.DBforPostgreSQL"
MYSQL = "Microsoft.DBforMySQL"
NAMESPACES = {"postgres": PG, "mysql": MYSQL}
SAS_ALLOWED = frozenset("acw")
SAS_NEEDED = frozenset("cw")
PERMISSION_NAMES = {
    "r": "read",
    "l": "list",
    "d": "delete",
    "x": "delete version",
    "y": "permanent delete",
    "t": "tags",
    "f": "filter",
    "m": "move",
    "e": "execute",
    "o": "ownership",
    "p": "permissions",
    "i": "set immutability policy",
}
MAX_SAS_LIFETIME = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)
NO_MYSQL_NOTE = (
    "lc2backup test stand-in: there is no MySQL server behind this fake Resource Manager, so backupAndExport "
    "wrote this note instead of a MySQL backup.\n"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class Failed(Exception):
    """What ends an operation Failed, with ARM's error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Server:
    subscription: str
    resource_group: str
    name: str
    engine: str  # postgres | mysql
    dsns: list[str] = field(default_factory=list)
    location: str = "eastus"
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "Ready"
    restored_from: Obj | None = None  # a restored server's source id and point in time, as the create asked
    copies: dict[str, str] = field(default_factory=dict)  # source database -> the fake's copy (restored servers)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.namespace.lower(), self.subscription.lower(), self.resource_group.lower(), self.name.lower())

    @property
    def namespace(self) -> str:
        return NAMESPACES[self.engine]

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/flexibleServers/{self.name}"
        )

    def describe(self) -> Obj:
        databases = [_database_of(dsn) for dsn in self.dsns]
        return {
            "id": self.id,
            "name": self.name,
            "engine": self.engine,
            "location": self.location,
            "databases": databases,
            "tags": self.tags,
            "state": self.state,
            "restoredFrom": self.restored_from,
            "databaseCopies": self.copies,
        }

    def resource(self) -> Obj:
        """The flexible server resource (Servers - Get); the point in time of a restore is never returned."""
        properties: Obj = {
            "version": "16" if self.engine == "postgres" else "8.0.21",
            "state": self.state,
            "fullyQualifiedDomainName": f"{self.name}.local",
        }
        if self.restored_from is not None:
            properties["sourceServerResourceId"] = self.restored_from["sourceServerResourceId"]
        return {
            "id": self.id,
            "name": self.name,
            "type": f"{self.namespace}/flexibleServers",
            "location": self.location,
            "tags": self.tags,
            "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
            "properties": properties,
        }


@dataclass
class Operation:
    """One long-running operation; ``kind``: backup (on-demand PUT), ltr (startLtrBackup / backupAndExport),
    restore (a server's PUT) or delete (a server's DELETE)."""

    id: str
    kind: str
    server: Server
    name: str  # the backup name; the server's for restore and delete
    api_version: str
    container_url: str | None = None
    source: Server | None = None  # restore: the server restored from
    status: str = "InProgress"
    percent: float = 0.0
    start_time: str = field(default_factory=_now)
    end_time: str | None = None
    error: Obj | None = None
    size: int = 0
    transferred: int = 0
    blobs: list[str] = field(default_factory=list)
    requests: int = 1

    def _path(self, kind: str) -> str:
        return (
            f"/subscriptions/{self.server.subscription}/providers/{self.server.namespace}"
            f"/locations/{self.server.location}/{kind}/{self.id}"
        )

    def async_path(self) -> str:
        return self._path("azureAsyncOperation")

    def location_path(self) -> str:
        return self._path("operationResults")

    def status_body(self) -> Obj:
        mysql = self.server.engine == "mysql"
        kind = (
            ("backupsV2" if mysql else "backups")
            if self.kind == "backup"
            else ("backupAndExport" if mysql else "ltrBackupOperations")
        )
        resource = self.server.id if self.kind in ("restore", "delete") else f"{self.server.id}/{kind}/{self.name}"
        body: Obj = {
            "id": self.async_path(),
            "resourceId": resource,
            "name": self.id,
            "status": self.status,
            "startTime": self.start_time,
            "percentComplete": self.percent,
        }
        if self.end_time is not None:
            body["endTime"] = self.end_time
        if self.error is not None:
            body["error"] = self.error
        return body

    @property
    def ltr_status(self) -> str:
        return "Running" if self.status == "InProgress" else self.status

    def ltr_properties(self) -> Obj:
        """``LtrBackupOperationResponseProperties`` (PostgreSQL) / ``BackupAndExportResponse.properties``."""
        props: Obj = {
            "datasourceSizeInBytes": self.size,
            "dataTransferredInBytes": self.transferred,
            "backupName": self.name,
            "backupMetadata": json.dumps(
                {"format": "pg_dump custom" if self.server.engine == "postgres" else "note", "blobs": self.blobs}
            ),
            "status": self.ltr_status,
            "startTime": self.start_time,
            "percentComplete": self.percent,
        }
        if self.end_time is not None:
            props["endTime"] = self.end_time
        if self.error is not None:
            props["errorCode"] = self.error["code"]
            props["errorMessage"] = self.error["message"]
        return props

    def result_body(self) -> Obj:
        """What the Location URL answers once the operation is over."""
        if self.kind == "restore" and self.status == "Succeeded":
            return self.server.resource()  # what MySQL's create reads from the Location URL
        body = self.status_body()
        if self.kind == "ltr":
            body["properties"] = self.ltr_properties()
        return body

    def describe(self) -> Obj:
        return {
            **self.status_body(),
            "kind": self.kind,
            "engine": self.server.engine,
            "server": self.server.id,
            "backupName": self.name,
            "containerUrl": self.container_url,
            "blobs": self.blobs,
            "requests": self.requests,
        }


@dataclass
class Settings:
    base: str
    blob_account_url: str
    ca_file: str
    operation_seconds: float = 0.5
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


class _MintedCredential:
    """The fake's own storage credential: a fresh token from ``tokens.mint_token`` for every request."""

    async def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken(*mint_token(scopes[0]))

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> _MintedCredential:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None


class ResourceManager:
    """The state of the fake and its handlers; one instance per process."""

    COUNTS = (
        "requests",
        "put_requests",
        "backups_created",
        "ltr_prechecks",
        "export_validations",
        "ltr_start_requests",
        "ltr_starts",
        "export_requests",
        "exports_started",
        "blobs_written",
        "throttled",
        "unauthenticated",
        "refused_sas",
        "server_create_requests",
        "servers_created",
        "server_delete_requests",
        "servers_deleted",
        "databases_copied",
    )

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._default_seconds = settings.operation_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._clear()

    def _clear(self) -> None:
        self.servers: dict[tuple[str, str, str, str], Server] = {}  # (namespace, sub, rg, name), lower case
        self.operations: dict[str, Operation] = {}  # by id, oldest first
        self.by_name: dict[tuple[str, str, str], Operation] = {}  # (kind, server id lower, backup name)
        self.counts = dict.fromkeys(self.COUNTS, 0)
        self.sas_received: list[str] = []
        self.api_versions: dict[str, int] = {}
        self.create_requests: dict[str, int] = {}  # server id (lower case) -> PUTs naming it
        self.failures: dict[str, list[tuple[str, str]]] = {"backup": [], "ltr": [], "restore": []}
        self.throttle_remaining = 0
        self.throttle_retry_after = 0
        self.released = asyncio.Event()
        self.released.set()

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def close(self, _app: web.Application) -> None:
        await self._cancel_tasks()

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the ARM front door: auth, throttling, api-version, ARM-shaped 404s -----------------------------------

    @web.middleware
    async def front_door(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            response: web.StreamResponse = await handler(request)
            return response
        self.counts["requests"] += 1
        problem = _token_problem(request.headers.get("Authorization"))
        if problem is not None:
            self.counts["unauthenticated"] += 1
            challenge = 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'
            return arm_error(401, "InvalidAuthenticationToken", problem, {"WWW-Authenticate": challenge})
        if self.throttle_remaining > 0:
            self.throttle_remaining -= 1
            self.counts["throttled"] += 1
            message = "The request is being throttled as the limit has been reached for operation type - Write."
            return arm_error(429, "TooManyRequests", message, {"Retry-After": str(self.throttle_retry_after)})
        version = request.query.get("api-version")
        if not version:
            message = "The api-version query parameter (?api-version=) is required for all requests."
            return arm_error(400, "MissingApiVersionParameter", message)
        self.api_versions[version] = self.api_versions.get(version, 0) + 1
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            message = f"The resource path '{request.path}' is not served by the fake Resource Manager."
            return arm_error(404, "NotFound", message)
        except web.HTTPMethodNotAllowed:
            return arm_error(405, "MethodNotAllowed", f"{request.method} is not supported on '{request.path}'.")
        return response

    def _server(self, request: web.Request, namespace: str) -> Server | None:
        info = request.match_info
        key = (namespace.lower(), info["sub"].lower(), info["rg"].lower(), info["srv"].lower())
        return self.servers.get(key)

    @staticmethod
    def _no_server(request: web.Request, namespace: str) -> web.Response:
        info = request.match_info
        message = (
            f"The Resource '{namespace}/flexibleServers/{info['srv']}' under resource group '{info['rg']}' "
            "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )
        return arm_error(404, "ResourceNotFound", message)

    def _accepted(self, operation: Operation) -> web.Response:
        version = urllib.parse.quote(operation.api_version, safe="")
        headers = {
            "Azure-AsyncOperation": f"{self.settings.base}{operation.async_path()}?api-version={version}",
            "Location": f"{self.settings.base}{operation.location_path()}?api-version={version}",
            "Retry-After": "0",
            "x-ms-request-id": str(uuid.uuid4()),
        }
        return web.json_response(operation.status_body(), status=202, headers=headers)

    def _start(
        self,
        kind: str,
        server: Server,
        name: str,
        request: web.Request,
        container_url: str | None,
        source: Server | None = None,
    ) -> Operation:
        operation = Operation(
            id=str(uuid.uuid4()),
            kind=kind,
            server=server,
            name=name,
            api_version=request.query["api-version"],
            container_url=container_url,
            source=source,
        )
        self.operations[operation.id] = operation
        self.by_name[(kind, server.id.lower(), name)] = operation
        queue = self.failures.get(kind)
        failure = queue.pop(0) if queue else None
        self._spawn(self._drive(operation, failure))
        return operation

    # -- PostgreSQL and MySQL on-demand backups ---------------------------------------------------------------

    async def put_backup(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        server = self._server(request, namespace)
        if server is None:
            return self._no_server(request, namespace)
        if namespace == MYSQL:
            body = await _json_body(request)
            if body is None:
                return arm_error(400, "InvalidRequestContent", "The request content is not a JSON object.")
        self.counts["put_requests"] += 1
        name = request.match_info["name"]
        existing = self.by_name.get(("backup", server.id.lower(), name))
        if existing is not None:
            existing.requests += 1
            return self._accepted(existing)
        self.counts["backups_created"] += 1
        return self._accepted(self._start("backup", server, name, request, None))

    async def get_server(self, request: web.Request) -> web.Response:
        """The flexible server resource (Servers - Get): what a client reads to check the name and the version."""
        namespace = _namespace(request)
        server = self._server(request, namespace)
        if server is None:
            return self._no_server(request, namespace)
        return web.json_response(server.resource())

    # -- servers: point-in-time restore into a new server, delete -------------------------------------------

    async def put_server(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        info = request.match_info
        scope = f"/subscriptions/{info['sub']}/resourceGroups/{info['rg']}/providers/{namespace}"
        server_id = f"{scope}/flexibleServers/{info['srv']}"
        self.counts["server_create_requests"] += 1
        self.create_requests[server_id.lower()] = self.create_requests.get(server_id.lower(), 0) + 1
        if self._server(request, namespace) is not None:
            message = f"The server '{info['srv']}' already exists; this Resource Manager updates no server."
            return arm_error(409, "ServerAlreadyExists", message)
        body = await _json_body(request)
        properties = body.get("properties") if body is not None else None
        if body is None or not isinstance(properties, dict) or not body.get("location"):
            return arm_error(400, "InvalidRequestContent", "location and properties are required.")
        mode = properties.get("createMode")
        if str(mode).lower() != "pointintimerestore":
            message = f"createMode {mode!r} is not served: this Resource Manager creates by PointInTimeRestore only."
            return arm_error(400, "InvalidParameterValue", message)
        source_id = str(properties.get("sourceServerResourceId") or "")
        source = self._server_by_id(source_id)
        if source is None or source.namespace != namespace:
            message = f"The source server '{source_id}' of the restore was not found (a {namespace} flexible server)."
            return arm_error(404, "ResourceNotFound", message)
        time_key = "pointInTimeUTC" if namespace == PG else "restorePointInTime"
        when = _timestamp(properties.get(time_key))
        if when is None or when > datetime.now(UTC) + CLOCK_SKEW:
            given = properties.get(time_key)
            message = f"properties.{time_key} must be an RFC 3339 time not in the future, not {given!r}."
            return arm_error(400, "InvalidParameterValue", message)
        tags = body.get("tags")
        tags = tags if isinstance(tags, dict) else {}
        server = Server(
            subscription=info["sub"],
            resource_group=info["rg"],
            name=info["srv"],
            engine=source.engine,
            location=str(body["location"]),
            tags={str(k): str(v) for k, v in tags.items()},
            state="Provisioning",
            restored_from={"sourceServerResourceId": source.id, "pointInTime": properties[time_key]},
        )
        self.servers[server.key] = server
        self.counts["servers_created"] += 1
        return self._accepted(self._start("restore", server, server.name, request, None, source))

    async def delete_server(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        server = self._server(request, namespace)
        self.counts["server_delete_requests"] += 1
        if server is None:
            return web.Response(status=204)
        running = self.by_name.get(("delete", server.id.lower(), server.name))
        if running is not None and running.status == "InProgress":
            running.requests += 1
            return self._accepted(running)
        server.state = "Dropping"
        return self._accepted(self._start("delete", server, server.name, request, None))

    def _server_by_id(self, resource_id: str) -> Server | None:
        parts = resource_id.strip("/").split("/")
        if len(parts) != 8:
            return None
        return self.servers.get((parts[5].lower(), parts[1].lower(), parts[3].lower(), parts[7].lower()))

    async def _copy_databases(self, operation: Operation) -> None:
        """A PostgreSQL restore's real copy of each database of the source, on the same PostgreSQL."""
        assert operation.source is not None
        server = operation.server
        for dsn in operation.source.dsns:
            database = _database_of(dsn)
            name = re.sub(r"[^a-z0-9_]", "_", f"{database}_{server.name}".lower())[:63]
            try:
                copied = await copy_database(dsn, name, self.settings.workdir)
            except DumpFailed as exc:
                raise Failed("InternalServerError", f"restoring database {database}: {exc}") from None
            server.dsns.append(copied)
            server.copies[database] = name
            self.counts["databases_copied"] += 1

    async def _drop(self, server: Server) -> None:
        """Forget ``server``, dropping the copies the fake made for it (a registered server's databases stay)."""
        if self.servers.get(server.key) is server:
            del self.servers[server.key]
        for dsn in server.dsns if server.copies else []:
            try:
                await drop_database(dsn)
            except DumpFailed:
                log.exception("dropping %s of server %s", _database_of(dsn), server.id)

    async def get_backup(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        mysql = namespace == MYSQL
        server = self._server(request, namespace)
        if server is None:
            return self._no_server(request, namespace)
        name = request.match_info["name"]
        operation = self.by_name.get(("backup", server.id.lower(), name))
        if operation is None or (not mysql and operation.status != "Succeeded"):
            kind = "backupsV2" if mysql else "backups"
            message = f"The Resource '{namespace}/flexibleServers/{server.name}/{kind}/{name}' was not found."
            return arm_error(404, "ResourceNotFound", message)
        return web.json_response(_backup_resource(operation, mysql))

    async def list_backups(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        mysql = namespace == MYSQL
        server = self._server(request, namespace)
        if server is None:
            return self._no_server(request, namespace)
        items = [
            _backup_resource(op, mysql)
            for op in self.operations.values()
            if op.kind == "backup" and op.server is server and (mysql or op.status == "Succeeded")
        ]
        return web.json_response({"value": items})

    # -- long-term retention (PostgreSQL) and backup-and-export (MySQL) ---------------------------------------

    async def ltr_pre_backup(self, request: web.Request) -> web.Response:
        server = self._server(request, PG)
        if server is None:
            return self._no_server(request, PG)
        body = await _json_body(request)
        if body is None or _backup_name(body) is None:
            return arm_error(400, "InvalidRequestContent", "backupSettings.backupName is required.")
        self.counts["ltr_prechecks"] += 1
        return web.json_response({"properties": {"numberOfContainers": 1}})

    async def validate_backup(self, request: web.Request) -> web.Response:
        server = self._server(request, MYSQL)
        if server is None:
            return self._no_server(request, MYSQL)
        self.counts["export_validations"] += 1
        return web.json_response({"properties": {"numberOfContainers": 1}})

    async def start_ltr(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        mysql = namespace == MYSQL
        server = self._server(request, namespace)
        if server is None:
            return self._no_server(request, namespace)
        requests_key, starts_key = (
            ("export_requests", "exports_started") if mysql else ("ltr_start_requests", "ltr_starts")
        )
        self.counts[requests_key] += 1
        body = await _json_body(request)
        name = _backup_name(body) if body is not None else None
        if body is None or name is None:
            return arm_error(400, "InvalidRequestContent", "backupSettings.backupName is required.")
        target = body.get("targetDetails")
        sas_list = target.get("sasUriList") if isinstance(target, dict) else None
        if not isinstance(sas_list, list) or not sas_list or not all(isinstance(s, str) for s in sas_list):
            return arm_error(400, "InvalidRequestContent", "targetDetails.sasUriList must list at least one SAS URI.")
        self.sas_received.extend(sas_list)
        containers = []
        for sas in sas_list:
            container, problem = check_sas(sas, self.settings.blob_account_url)
            if problem is not None:
                self.counts["refused_sas"] += 1
                return arm_error(400, "InvalidParameterValue", f"targetDetails.sasUriList: {problem}")
            containers.append(container)
        existing = self.by_name.get(("ltr", server.id.lower(), name))
        if existing is not None:
            existing.requests += 1
            return self._accepted(existing)
        self.counts[starts_key] += 1
        container_url = f"{self.settings.blob_account_url}/{containers[0]}"
        return self._accepted(self._start("ltr", server, name, request, container_url))

    async def get_ltr(self, request: web.Request) -> web.Response:
        server = self._server(request, PG)
        if server is None:
            return self._no_server(request, PG)
        name = request.match_info["name"]
        operation = self.by_name.get(("ltr", server.id.lower(), name))
        if operation is None:
            message = f"The Resource '{PG}/flexibleServers/{server.name}/ltrBackupOperations/{name}' was not found."
            return arm_error(404, "ResourceNotFound", message)
        return web.json_response(_ltr_resource(operation))

    async def list_ltr(self, request: web.Request) -> web.Response:
        server = self._server(request, PG)
        if server is None:
            return self._no_server(request, PG)
        items = [_ltr_resource(op) for op in self.operations.values() if op.kind == "ltr" and op.server is server]
        return web.json_response({"value": items})

    # -- operation status --------------------------------------------------------------------------------------

    def _operation(self, request: web.Request) -> Operation | None:
        operation = self.operations.get(request.match_info["id"])
        if operation is None or operation.server.subscription.lower() != request.match_info["sub"].lower():
            return None
        return operation

    async def async_operation(self, request: web.Request) -> web.Response:
        operation = self._operation(request)
        if operation is None:
            return arm_error(404, "OperationNotFound", f"The operation '{request.match_info['id']}' was not found.")
        return web.json_response(operation.status_body())

    async def operation_result(self, request: web.Request) -> web.Response:
        operation = self._operation(request)
        if operation is None:
            return arm_error(404, "OperationNotFound", f"The operation '{request.match_info['id']}' was not found.")
        if operation.status == "InProgress":
            version = urllib.parse.quote(operation.api_version, safe="")
            headers = {
                "Location": f"{self.settings.base}{operation.location_path()}?api-version={version}",
                "Retry-After": "0",
            }
            return web.Response(status=202, headers=headers)
        return web.json_response(operation.result_body())

    # -- operations over time ----------------------------------------------------------------------------------

    async def _drive(self, operation: Operation, failure: tuple[str, str] | None) -> None:
        started = time.monotonic()
        seconds = self.settings.operation_seconds
        error: Obj | None = None
        try:
            if failure is not None:
                raise Failed(*failure)
            if operation.kind == "ltr":
                await self._write_backup(operation)
            if operation.kind == "restore" and operation.server.engine == "postgres":
                await self._copy_databases(operation)
        except Failed as failed:
            error = {"code": failed.code, "message": failed.message}
        except Exception as exc:  # the fake reports its own failures as the operation's, never as a lost task
            log.exception("operation %s failed inside the fake", operation.id)
            error = {"code": "InternalServerError", "message": f"fake Resource Manager: {exc}"}
        await asyncio.sleep(max(0.0, started + seconds / 2 - time.monotonic()))
        if error is None:
            operation.percent = 50.0
        await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
        await self.released.wait()
        await self._ending(operation, error is None)
        operation.end_time = _now()
        if error is None:
            operation.percent = 100.0
            operation.status = "Succeeded"
        else:
            operation.error = error
            operation.status = "Failed"

    async def _ending(self, operation: Operation, succeeded: bool) -> None:
        """A server operation's effect on its server, before its end is visible: Ready once created; gone (with
        the fake's copies) once deleted or when its create failed."""
        server = operation.server
        if operation.kind == "restore" and succeeded:
            server.state = "Ready"
        elif operation.kind == "restore" or (operation.kind == "delete" and succeeded):
            await self._drop(server)
            if operation.kind == "delete":
                self.counts["servers_deleted"] += 1

    async def _write_backup(self, operation: Operation) -> None:
        assert operation.container_url is not None
        account_url, container = operation.container_url.rsplit("/", 1)
        blobs: list[tuple[str, bytes]] = []
        if operation.server.engine == "mysql":
            blobs.append((f"{operation.name}/STAND-IN-NO-MYSQL.txt", NO_MYSQL_NOTE.encode()))
        else:
            for dsn in operation.server.dsns:
                blobs.append((f"{operation.name}/{_database_of(dsn)}.dump", await self._pg_dump(dsn)))
        operation.size = sum(len(data) for _, data in blobs)
        client = ContainerClient(
            account_url, container, credential=_MintedCredential(), connection_verify=self.settings.ca_file
        )
        async with client:
            for blob, data in blobs:
                try:
                    await client.upload_blob(blob, data, overwrite=False)
                except ResourceExistsError:
                    raise Failed(
                        "BlobAlreadyExists", f"The blob '{container}/{blob}' already exists; nothing overwritten."
                    ) from None
                except ResourceNotFoundError:
                    raise Failed("ContainerNotFound", f"The container '{container}' does not exist.") from None
                except AzureError as exc:
                    raise Failed("StorageError", f"Writing '{container}/{blob}' failed: {exc}") from None
                operation.transferred += len(data)
                operation.blobs.append(blob)
                self.counts["blobs_written"] += 1

    async def _pg_dump(self, dsn: str) -> bytes:
        try:
            return await pg_dump_bytes(dsn, "custom", self.settings.workdir)
        except DumpFailed as exc:
            raise Failed("InternalServerError", str(exc)) from None

    # -- test control ----------------------------------------------------------------------------------------

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def add_server(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        try:
            engine = str(body.get("engine", "postgres"))
            if engine not in NAMESPACES:
                return web.json_response({"error": f"engine must be one of {sorted(NAMESPACES)}"}, status=400)
            dsns = [str(body["dsn"])] if body.get("dsn") else []
            dsns += [str(dsn) for dsn in body.get("databases") or []]
            if engine == "postgres" and not dsns:
                return web.json_response({"error": "a postgres server needs a dsn"}, status=400)
            server = Server(
                subscription=str(body["subscription"]),
                resource_group=str(body["resourceGroup"]),
                name=str(body["name"]),
                engine=engine,
                dsns=dsns,
                location=str(body.get("location", "eastus")),
            )
        except KeyError as missing:
            return web.json_response({"error": f"missing {missing}"}, status=400)
        self.servers[server.key] = server
        return web.json_response(server.describe())

    async def configure(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        if body.get("operationSeconds") is not None:
            self.settings.operation_seconds = float(body["operationSeconds"])
        return web.json_response({"operationSeconds": self.settings.operation_seconds})

    async def hold(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        if body.get("hold"):
            self.released.clear()
        else:
            self.released.set()
        return web.json_response({"hold": not self.released.is_set()})

    async def fail(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        target = body.get("target")
        if target not in self.failures:
            return web.json_response({"error": "target must be backup or ltr"}, status=400)
        self.failures[target].append(
            (str(body.get("code", "InternalServerError")), str(body.get("message", "injected failure")))
        )
        return web.json_response({kind: len(queue) for kind, queue in self.failures.items()})

    async def throttle(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        self.throttle_remaining = int(body.get("count", 0))
        self.throttle_retry_after = int(body.get("retry_after", 0))
        return web.json_response({"count": self.throttle_remaining, "retry_after": self.throttle_retry_after})

    async def state(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "servers": [server.describe() for server in self.servers.values()],
                "operations": [operation.describe() for operation in self.operations.values()],
                "counts": self.counts,
                "createRequests": self.create_requests,
                "sas": self.sas_received,
                "apiVersions": self.api_versions,
                "hold": not self.released.is_set(),
                "operationSeconds": self.settings.operation_seconds,
                "pendingFailures": {kind: len(queue) for kind, queue in self.failures.items()},
                "throttleRemaining": self.throttle_remaining,
            }
        )

    async def reset(self, _request: web.Request) -> web.Response:
        self.released.set()
        await self._cancel_tasks()
        self.settings.operation_seconds = self._default_seconds
        self._clear()
        return web.json_response({"reset": True})

    def add_routes(self, app: web.Application) -> None:
        scope = "/subscriptions/{sub}/resourceGroups/{rg}/providers"
        pg, mysql = f"{scope}/{PG}/flexibleServers/{{srv}}", f"{scope}/{MYSQL}/flexibleServers/{{srv}}"
        for server in (pg, mysql):
            app.router.add_get(server, self.get_server)
            app.router.add_put(server, self.put_server)
            app.router.add_delete(server, self.delete_server)
        app.router.add_put(pg + "/backups/{name}", self.put_backup)
        app.router.add_get(pg + "/backups/{name}", self.get_backup)
        app.router.add_get(f"{pg}/backups", self.list_backups)
        app.router.add_post(f"{pg}/ltrPreBackup", self.ltr_pre_backup)
        app.router.add_post(f"{pg}/startLtrBackup", self.start_ltr)
        app.router.add_get(pg + "/ltrBackupOperations/{name}", self.get_ltr)
        app.router.add_get(f"{pg}/ltrBackupOperations", self.list_ltr)
        app.router.add_put(mysql + "/backupsV2/{name}", self.put_backup)
        app.router.add_get(mysql + "/backupsV2/{name}", self.get_backup)
        app.router.add_get(f"{mysql}/backupsV2", self.list_backups)
        app.router.add_post(f"{mysql}/validateBackup", self.validate_backup)
        app.router.add_post(f"{mysql}/backupAndExport", self.start_ltr)
        locations = "/subscriptions/{sub}/providers/{namespace}/locations/{location}"
        app.router.add_get(locations + "/azureAsyncOperation/{id}", self.async_operation)
        app.router.add_get(locations + "/operationResults/{id}", self.operation_result)
        app.router.add_get("/_fake/health", self.health)
        app.router.add_post("/_fake/servers", self.add_server)
        app.router.add_post("/_fake/config", self.configure)
        app.router.add_post("/_fake/hold", self.hold)
        app.router.add_post("/_fake/fail", self.fail)
        app.router.add_post("/_fake/throttle", self.throttle)
        app.router.add_get("/_fake/state", self.state)
        app.router.add_post("/_fake/reset", self.reset)


def _namespace(request: web.Request) -> str:
    return MYSQL if f"/providers/{MYSQL}/" in request.path else PG


def _token_problem(authorization: str | None) -> str | None:
    """Why a request's ``Authorization`` header is not accepted (None when it is)."""
    if not authorization:
        return "The request is missing the Authorization header with a bearer token."
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "The Authorization header must carry a bearer token."
    claims = token_claims(token.strip())
    if claims is None:
        return "The access token is invalid: it is not a JWT."
    if str(claims.get("aud", "")).rstrip("/") != MANAGEMENT:
        return f"The access token has an invalid audience '{claims.get('aud')}'; expected '{MANAGEMENT}'."
    if claims.get("iss") != ISSUER:
        return f"The access token is from the wrong issuer '{claims.get('iss')}'."
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= time.time():
        return "The access token expiry UTC time is earlier than current UTC time."
    return None


def check_sas(url: str, account_url: str) -> tuple[str, str | None]:
    """(container, problem): the request-time checks of a container SAS URL for writing a backup. The signature is
    not verified (see the module docstring)."""
    parts = urllib.parse.urlsplit(url)
    account = urllib.parse.urlsplit(account_url)
    if parts.scheme != "https":
        return "", "the SAS URI must use https."
    prefix = account.path.rstrip("/") + "/"
    if parts.netloc != account.netloc or not parts.path.startswith(prefix):
        return "", f"the SAS URI must point at the storage account {account_url}."
    container = parts.path[len(prefix) :].strip("/")
    if not container or "/" in container:
        return "", "the SAS URI must name exactly one container."
    query = urllib.parse.parse_qs(parts.query)

    def one(key: str) -> str:
        values = query.get(key) or [""]
        return values[0]

    if not one("sig"):
        return container, "the SAS URI has no signature (sig)."
    if one("sr") != "c":
        return container, f"the SAS must scope a container (sr=c), not sr={one('sr') or '(missing)'}."
    permissions = one("sp")
    extra = sorted(set(permissions) - SAS_ALLOWED)
    if extra:
        names = ", ".join(f"{PERMISSION_NAMES.get(letter, 'unknown')} ({letter})" for letter in extra)
        return (
            container,
            f"the SAS grants more than writing a backup needs: {names}; grant only create and write (sp=cw).",
        )
    if not SAS_NEEDED & set(permissions):
        return container, "the SAS must grant create or write (sp=cw)."
    try:
        expiry = datetime.fromisoformat(one("se").replace("Z", "+00:00"))
    except ValueError:
        return container, "the SAS has no valid expiry (se)."
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if expiry <= now:
        return container, "the SAS has expired."
    if expiry > now + MAX_SAS_LIFETIME + CLOCK_SKEW:
        return container, "the SAS expires more than 24 hours from now."
    return container, None


def _timestamp(value: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _backup_name(body: Obj) -> str | None:
    settings = body.get("backupSettings")
    name = settings.get("backupName") if isinstance(settings, dict) else None
    return name if isinstance(name, str) and name else None


def _backup_resource(operation: Operation, mysql: bool) -> Obj:
    server = operation.server
    if mysql:
        state = {"InProgress": "Creating"}.get(operation.status, operation.status)
        props: Obj = {
            "backupNameV2": operation.name,
            "backupType": "FULL",
            "source": "Automatic",
            "provisioningState": state,
        }
        kind = "backupsV2"
    else:
        props = {"backupType": "Customer On-Demand", "source": "Automatic"}
        kind = "backups"
    if operation.status == "Succeeded":
        props["completedTime"] = operation.end_time
    return {
        "id": f"{server.id}/{kind}/{operation.name}",
        "name": operation.name,
        "type": f"{server.namespace}/flexibleServers/{kind}",
        "properties": props,
    }


def _ltr_resource(operation: Operation) -> Obj:
    return {
        "id": f"{operation.server.id}/ltrBackupOperations/{operation.name}",
        "name": operation.name,
        "type": f"{PG}/flexibleServers/ltrBackupOperations",
        "properties": operation.ltr_properties(),
    }


async def _json_body(request: web.Request) -> Obj | None:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _database_of(dsn: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(dsn).path.lstrip("/")) or "postgres"


def create_app(settings: Settings) -> web.Application:
    arm = ResourceManager(settings)
    app = web.Application(middlewares=[arm.front_door])
    arm.add_routes(app)
    app.on_cleanup.append(arm.close)
    return app


async def serve(host: str, port: int, settings: Settings, cert: Path, key: Path) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("fake Resource Manager listening on https://%s:%d (blob %s)", host, port, settings.blob_account_url)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Azure Resource Manager for flexible-server backups")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="CA file to trust for the blob endpoint")
    parser.add_argument("--blob-account-url", required=True, help="https://127.0.0.1:N/devstoreaccount1")
    parser.add_argument("--operation-seconds", type=float, default=0.5)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()), help="for pg_dump output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s arm %(levelname)s %(message)s")
    base = f"https://{args.host}:{args.port}"
    settings = Settings(base, args.blob_account_url.rstrip("/"), str(args.ca), args.operation_seconds, args.workdir)
    asyncio.run(serve(args.host, args.port, settings, args.cert, args.key))


@dataclass
class FakeResourceManager(LoopbackServer):
    """The fake as a process on 127.0.0.1 over HTTPS; clients use ``endpoint`` as ``base_url`` and trust
    ``tls.ca``. ``blob_account_url`` is the only storage account a SAS may point at."""

    name = "fake-arm"
    ready_path = "/_fake/health"

    tls: TlsFiles
    blob_account_url: str
    operation_seconds: float = 0.5

    @property
    def endpoint(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "lc2backup.testing.azure.arm", "--host", LOOPBACK, "--port", str(self.port)]
        argv += ["--cert", str(self.tls.cert), "--key", str(self.tls.key), "--ca", str(self.tls.ca)]
        argv += ["--blob-account-url", self.blob_account_url, "--operation-seconds", str(self.operation_seconds)]
        return [*argv, "--workdir", str(self.directory / "dumps")]

    def wait_ready(self) -> float:
        assert self._process is not None
        return self._process.wait_ready(lambda: tcp_open(LOOPBACK, self.port), timeout=self.ready_timeout)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls.ca))

    def _call(self, method: str, path: str, body: Obj | None = None) -> Obj:
        doc: Obj = call_json(f"{self.endpoint}/_fake/{path}", method, body, context=self.ssl_context())
        return doc

    def add_server(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        engine: str = "postgres",
        dsn: str | None = None,
        databases: list[str] | None = None,
        location: str = "eastus",
    ) -> Obj:
        """Register a flexible server. A postgres server is backed by the PostgreSQL database at ``dsn`` (plus the
        databases at the DSNs in ``databases``): an LTR backup dumps each of them. A mysql server needs no DSN."""
        body = {
            "subscription": subscription,
            "resourceGroup": resource_group,
            "name": name,
            "engine": engine,
            "dsn": dsn,
            "databases": databases or [],
            "location": location,
        }
        return self._call("POST", "servers", body)

    def configure(self, operation_seconds: float) -> Obj:
        """The (minimum) seconds each new operation stays InProgress; percentComplete is 50 at half time."""
        return self._call("POST", "config", {"operationSeconds": operation_seconds})

    def hold(self, on: bool) -> None:
        """While held, no operation finishes (an LTR's blobs are still written)."""
        self._call("POST", "hold", {"hold": on})

    def fail_next(self, target: str, code: str, message: str) -> None:
        """The next operation of ``target`` (``backup``: PUT backups / backupsV2; ``ltr``: startLtrBackup /
        backupAndExport; ``restore``: a server's PUT) ends Failed with this error and writes nothing. Queued: call
        twice to fail two."""
        self._call("POST", "fail", {"target": target, "code": code, "message": message})

    def throttle(self, count: int, retry_after: int = 0) -> None:
        """The next ``count`` authenticated ARM requests answer 429 TooManyRequests with ``Retry-After``."""
        self._call("POST", "throttle", {"count": count, "retry_after": retry_after})

    def create_requests(self, server_id: str) -> int:
        """How many PUTs named the server ``server_id`` (a resource id; any case), refused ones too."""
        return int(self.state()["createRequests"].get(server_id.lower(), 0))

    def server(self, server_id: str) -> Obj | None:
        """The server ``server_id`` as the fake holds it (``tags``, ``state``, ``restoredFrom``, ``databaseCopies``)."""
        return next((s for s in self.state()["servers"] if s["id"].lower() == server_id.lower()), None)

    def state(self) -> Obj:
        """``counts``, ``createRequests`` (per server id, lower case), ``operations`` (oldest first), ``sas`` (every
        SAS URI received, refused ones too),
        ``servers``, ``apiVersions``, ``hold``, ``operationSeconds``, ``pendingFailures``, ``throttleRemaining``."""
        return self._call("GET", "state")

    def reset(self) -> None:
        """Forget servers, operations, counts, SAS, injections, throttling and hold; timing back to the start's."""
        self._call("POST", "reset", {})


if __name__ == "__main__":
    main()
