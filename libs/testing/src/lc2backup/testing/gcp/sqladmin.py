"""A Cloud SQL Admin API v1 for the tests: backup runs, exports, databases, imports and operations, over the REST
wire format.

The discovery client (``googleapiclient.discovery.build("sqladmin", "v1", ...)`` with ``api_endpoint``) talks to
it unchanged. Requests need a bearer token from this process's ``/token`` endpoint (``tokens.py``).

Semantics kept from Cloud SQL:
- Operations move PENDING -> RUNNING -> DONE over time; DONE does not mean success (``error.errors[]``).
- One admin operation per instance at a time: while one is PENDING or RUNNING, ``backupRuns.insert``,
  ``instances.export``, ``instances.import``, ``databases.insert`` and ``databases.delete`` answer 409
  ``operationInProgress`` and create nothing.
- An export is real: ``pg_dump`` (plain SQL, ``--no-owner --no-privileges``) of the named database of the
  PostgreSQL the instance was registered with, gzipped for a ``.gz`` uri, uploaded to fake-gcs-server over its
  JSON API while the operation runs; DONE only after the upload. An existing object, a missing bucket or a
  missing database end the operation DONE with an error, as the API documents for the existing file.
- Databases are the real ones of that PostgreSQL: ``databases.get`` reads ``pg_database``, ``databases.insert``
  runs ``CREATE DATABASE`` and ``databases.delete`` ``DROP DATABASE`` while their operation (``CREATE_DATABASE``,
  ``DELETE_DATABASE``) runs; inserting a name that exists is a 400, as Cloud SQL answers it.
- An import is real too (``importContext: {uri, database, fileType: SQL}``): the object is read from
  fake-gcs-server, gunzipped for a ``.gz`` uri, and loaded with ``psql -v ON_ERROR_STOP=1`` into the named database
  while the ``IMPORT`` operation runs; a missing file or database, or the first failing statement, ends it DONE
  with the error. Every import accepted is counted per ``<instance>/<database>`` (``counts.imports``).
- A MySQL instance accepts the export request but there is no MySQL server here: its export ends DONE with an
  error saying so (its databases are the names registered with it).

Test control under ``/_fake/`` (no token needed): register instances, timing, hold (no operation, or none of the
given types, leaves RUNNING), injected 409s and export errors, state with effect counts, reset. ``FakeSqlAdmin``
runs it as a process.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import logging
import signal
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.servers import LoopbackServer, call_json
from lc2backup.testing.dumps import DumpFailed, pg_dump_bytes, psql, quoted, with_database
from lc2backup.testing.gcp.tokens import TokenIssuer

log = logging.getLogger("lc2backup.testing.gcp.sqladmin")

Obj = dict[str, Any]

ACTIVE = ("PENDING", "RUNNING")
IN_PROGRESS_MESSAGE = (
    "Operation failed because another operation was already in progress. "
    "Try your request after the current operation is complete."
)
NO_INSTANCE_MESSAGE = "The Cloud SQL instance does not exist."
NO_DATABASE_MESSAGE = "Not Found"
DATABASE_NAME_MAX = 63


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def google_error(code: int, status: str, reason: str, message: str) -> web.Response:
    """The error body of Google's JSON APIs (what ``googleapiclient.errors.HttpError`` parses)."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }
    return web.json_response(body, status=code)


def _invalid(detail: str) -> web.Response:
    return google_error(400, "INVALID_ARGUMENT", "invalid", f"Invalid request: {detail}")


def _unauthenticated(request: web.Request) -> web.Response:
    if "Authorization" in request.headers:
        message = (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential."
        )
        detail = {"message": "Invalid Credentials", "reason": "authError"}
    else:
        message = (
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
            "or other valid authentication credential."
        )
        detail = {"message": "Login Required.", "reason": "required"}
    error = {**detail, "domain": "global", "location": "Authorization", "locationType": "header"}
    body = {"error": {"code": 401, "message": message, "errors": [error], "status": "UNAUTHENTICATED"}}
    headers = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
    return web.json_response(body, status=401, headers=headers)


def _operation_error(code: str, message: str) -> Obj:
    return {"kind": "sql#operationErrors", "errors": [{"kind": "sql#operationError", "code": code, "message": message}]}


def _page(items: list[Obj], request: web.Request, kind: str, default_size: int) -> web.Response:
    try:
        size = int(request.query.get("maxResults") or default_size)
        start = int(request.query.get("pageToken") or 0)
    except ValueError:
        return _invalid("maxResults and pageToken must be integers.")
    size = max(1, size)
    body: Obj = {"kind": kind, "items": items[start : start + size]}
    if start + size < len(items):
        body["nextPageToken"] = str(start + size)
    return web.json_response(body)


@dataclass
class Instance:
    project: str
    name: str
    database_version: str
    dsn: str
    region: str = "us-central1"
    databases: list[str] = field(default_factory=list)  # what databases.list answers (the MySQL path)

    def resource(self, base: str) -> Obj:
        return {
            "kind": "sql#instance",
            "name": self.name,
            "project": self.project,
            "databaseVersion": self.database_version,
            "state": "RUNNABLE",
            "region": self.region,
            "gceZone": f"{self.region}-a",
            "backendType": "SECOND_GEN",
            "instanceType": "CLOUD_SQL_INSTANCE",
            "connectionName": f"{self.project}:{self.region}:{self.name}",
            "serviceAccountEmailAddress": f"p-{self.project}-{self.name}@gcp-sa-cloud-sql.iam.gserviceaccount.com",
            "selfLink": f"{base}/v1/projects/{self.project}/instances/{self.name}",
        }


@dataclass
class Settings:
    gcs: str
    pending_seconds: float = 0.3
    running_seconds: float = 1.0
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


class OperationFailed(Exception):
    """What ends an operation DONE with an error (``error.errors[]``): Cloud SQL's code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SqlAdmin:
    """The state of the fake and its handlers; one instance per process."""

    def __init__(self, settings: Settings, issuer: TokenIssuer, base: str) -> None:
        self.settings = settings
        self.issuer = issuer
        self.base = base
        self._defaults = (settings.pending_seconds, settings.running_seconds)
        self._ids = itertools.count(int(time.time() * 1000))
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._clear()

    def _clear(self) -> None:
        self.instances: dict[tuple[str, str], Instance] = {}
        self.backup_runs: list[Obj] = []  # oldest first
        self.operations: list[Obj] = []  # oldest first
        self.counts: Obj = dict.fromkeys(
            (
                "backupRuns.insert",
                "instances.export",
                "instances.import",
                "databases.insert",
                "databases.delete",
                "conflicts",
                "unauthenticated",
                "exportsWritten",
            ),
            0,
        )
        self.counts["imports"] = {}  # "<instance>/<database>" -> imports accepted into it
        self.conflicts_to_inject = 0
        self.export_errors: list[str] = []
        self.released = asyncio.Event()
        self.released.set()
        self.held_types: set[str] = set()  # empty: every operation type is held

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def open(self, _app: web.Application) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))

    async def close(self, _app: web.Application) -> None:
        await self._cancel_tasks()
        if self._http is not None:
            await self._http.close()

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v1/") and not self.issuer.authenticated(request):
            self.counts["unauthenticated"] += 1
            return _unauthenticated(request)
        response: web.StreamResponse = await handler(request)
        return response

    # -- Cloud SQL Admin v1 ---------------------------------------------------------------------------------

    def _instance(self, request: web.Request) -> Instance | None:
        return self.instances.get((request.match_info["project"], request.match_info["instance"]))

    def _busy(self, instance: Instance) -> bool:
        return any(
            op["targetProject"] == instance.project and op["targetId"] == instance.name and op["status"] in ACTIVE
            for op in self.operations
        )

    def _conflict(self, instance: Instance) -> web.Response | None:
        if self.conflicts_to_inject > 0:
            self.conflicts_to_inject -= 1
        elif not self._busy(instance):
            return None
        self.counts["conflicts"] += 1
        return google_error(409, "ABORTED", "operationInProgress", IN_PROGRESS_MESSAGE)

    async def get_instance(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        return web.json_response(instance.resource(self.base))

    async def list_databases(self, request: web.Request) -> web.Response:
        """``databases.list`` (``sql#databasesList``): the server's databases, or the names registered with a
        MySQL instance."""
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        names = instance.databases
        if instance.database_version.startswith("POSTGRES"):
            listed = await _psql(
                with_database(instance.dsn, "postgres"),
                "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname",
            )
            names = listed.split()
        items = [self._database_resource(instance, name) for name in names]
        return web.json_response({"kind": "sql#databasesList", "items": items})

    async def insert_backup_run(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        body = await _json_body(request)
        if body is None:
            return _invalid("the body must be a BackupRun JSON object.")
        if (conflict := self._conflict(instance)) is not None:
            return conflict
        run_id = str(next(self._ids))
        run: Obj = {
            "kind": "sql#backupRun",
            "id": run_id,
            "status": "ENQUEUED",
            "type": "ON_DEMAND",
            "backupKind": "SNAPSHOT",
            "instance": instance.name,
            "enqueuedTime": _now(),
            "location": instance.region,
            "databaseVersion": instance.database_version,
            "selfLink": f"{self.base}/v1/projects/{instance.project}/instances/{instance.name}/backupRuns/{run_id}",
        }
        if isinstance(body.get("description"), str):
            run["description"] = body["description"]
        self.backup_runs.append(run)
        operation = self._new_operation(instance, "BACKUP_VOLUME")
        operation["backupContext"] = {"kind": "sql#backupContext", "backupId": run_id}
        self.counts["backupRuns.insert"] += 1
        self._spawn(self._drive(operation, run=run))
        return web.json_response(operation)

    async def get_backup_run(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        for run in self._runs_of(instance):
            if run["id"] == request.match_info["id"]:
                return web.json_response(run)
        return google_error(404, "NOT_FOUND", "backupRunDoesNotExist", "The backup run does not exist.")

    async def list_backup_runs(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        return _page(self._runs_of(instance)[::-1], request, "sql#backupRunsList", default_size=100)

    def _runs_of(self, instance: Instance) -> list[Obj]:
        prefix = f"{self.base}/v1/projects/{instance.project}/instances/{instance.name}/"
        return [run for run in self.backup_runs if run["selfLink"].startswith(prefix)]

    async def export(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        body = await _json_body(request)
        context = body.get("exportContext") if body is not None else None
        if not isinstance(context, dict):
            return _invalid("exportContext is required.")
        problem = _validate_export(context, instance)
        if problem is not None:
            return _invalid(problem)
        if (conflict := self._conflict(instance)) is not None:
            return conflict
        operation = self._new_operation(instance, "EXPORT")
        operation["exportContext"] = {"kind": "sql#exportContext", **context}
        self.counts["instances.export"] += 1
        context = operation["exportContext"]
        self._spawn(self._drive(operation, work=lambda: self._export(instance, context)))
        return web.json_response(operation)

    async def insert_database(self, request: web.Request) -> web.Response:
        """``databases.insert``: a CREATE_DATABASE operation that creates the database on the instance's server."""
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        body = await _json_body(request)
        name = body.get("name") if body is not None else None
        if not isinstance(name, str) or not name or len(name) > DATABASE_NAME_MAX:
            return _invalid(f"the database name must be 1 to {DATABASE_NAME_MAX} characters.")
        if (conflict := self._conflict(instance)) is not None:
            return conflict
        if await self._has_database(instance, name):
            detail = f'failed to create database {name}. Detail: pq: database "{name}" already exists.'
            return _invalid(detail)
        operation = self._new_operation(instance, "CREATE_DATABASE")
        self.counts["databases.insert"] += 1
        self._spawn(self._drive(operation, work=lambda: self._create_database(instance, name)))
        return web.json_response(operation)

    async def get_database(self, request: web.Request) -> web.Response:
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        name = request.match_info["database"]
        if not await self._has_database(instance, name):
            return google_error(404, "NOT_FOUND", "notFound", NO_DATABASE_MESSAGE)
        return web.json_response(self._database_resource(instance, name))

    async def delete_database(self, request: web.Request) -> web.Response:
        """``databases.delete``: a DELETE_DATABASE operation that drops it (its sessions ended)."""
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        name = request.match_info["database"]
        if not await self._has_database(instance, name):
            return google_error(404, "NOT_FOUND", "notFound", NO_DATABASE_MESSAGE)
        if (conflict := self._conflict(instance)) is not None:
            return conflict
        operation = self._new_operation(instance, "DELETE_DATABASE")
        self.counts["databases.delete"] += 1
        self._spawn(self._drive(operation, work=lambda: self._drop_database(instance, name)))
        return web.json_response(operation)

    async def import_(self, request: web.Request) -> web.Response:
        """``instances.import`` of a SQL file: an IMPORT operation that loads it with psql."""
        instance = self._instance(request)
        if instance is None:
            return google_error(404, "NOT_FOUND", "instanceDoesNotExist", NO_INSTANCE_MESSAGE)
        body = await _json_body(request)
        context = body.get("importContext") if body is not None else None
        if not isinstance(context, dict):
            return _invalid("importContext is required.")
        problem = _validate_import(context, instance)
        if problem is not None:
            return _invalid(problem)
        if (conflict := self._conflict(instance)) is not None:
            return conflict
        operation = self._new_operation(instance, "IMPORT")
        operation["importContext"] = {"kind": "sql#importContext", **context}
        self.counts["instances.import"] += 1
        key = f"{instance.name}/{context['database']}"
        self.counts["imports"][key] = self.counts["imports"].get(key, 0) + 1
        imported = operation["importContext"]
        self._spawn(self._drive(operation, work=lambda: self._import(instance, imported)))
        return web.json_response(operation)

    async def get_operation(self, request: web.Request) -> web.Response:
        project, name = request.match_info["project"], request.match_info["operation"]
        for operation in self.operations:
            if operation["name"] == name and operation["targetProject"] == project:
                return web.json_response(operation)
        message = f"The Cloud SQL operation {name} does not exist."
        return google_error(404, "NOT_FOUND", "operationDoesNotExist", message)

    async def list_operations(self, request: web.Request) -> web.Response:
        project, instance = request.match_info["project"], request.query.get("instance")
        matching = [
            op
            for op in self.operations
            if op["targetProject"] == project and (instance is None or op["targetId"] == instance)
        ]
        return _page(matching[::-1], request, "sql#operationsList", default_size=500)

    # -- operations over time -------------------------------------------------------------------------------

    def _new_operation(self, instance: Instance, operation_type: str) -> Obj:
        name = str(uuid.uuid4())
        operation: Obj = {
            "kind": "sql#operation",
            "name": name,
            "operationType": operation_type,
            "status": "PENDING",
            "user": "lc2-fake@example.com",
            "insertTime": _now(),
            "targetId": instance.name,
            "targetProject": instance.project,
            "targetLink": f"{self.base}/v1/projects/{instance.project}/instances/{instance.name}",
            "selfLink": f"{self.base}/v1/projects/{instance.project}/operations/{name}",
        }
        self.operations.append(operation)
        return operation

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive(
        self, operation: Obj, *, run: Obj | None = None, work: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        await asyncio.sleep(self.settings.pending_seconds)
        operation["status"] = "RUNNING"
        operation["startTime"] = _now()
        if run is not None:
            run["status"] = "RUNNING"
            run["startTime"] = operation["startTime"]
        running_until = time.monotonic() + self.settings.running_seconds
        error: Obj | None = None
        try:
            if work is not None:
                await work()
        except OperationFailed as failed:
            error = _operation_error(failed.code, failed.message)
        except Exception as exc:  # the fake reports its own failures as the operation's, never as a lost task
            log.exception("operation %s failed inside the fake", operation["name"])
            error = _operation_error("INTERNAL_ERROR", f"fake sqladmin: {exc}")
        await asyncio.sleep(max(0.0, running_until - time.monotonic()))
        if not self.held_types or operation["operationType"] in self.held_types:
            await self.released.wait()
        operation["endTime"] = _now()
        if error is not None:
            operation["error"] = error
        if run is not None:
            run["endTime"] = operation["endTime"]
            run["status"] = "SUCCESSFUL" if error is None else "FAILED"
            if error is not None:
                run["error"] = error["errors"][0]
        operation["status"] = "DONE"

    async def _export(self, instance: Instance, context: Obj) -> None:
        if self.export_errors:
            raise OperationFailed("ERROR_RDBMS", self.export_errors.pop(0))
        if not instance.database_version.startswith("POSTGRES"):
            message = f"fake sqladmin cannot dump {instance.database_version}: there is no MySQL server here"
            raise OperationFailed("ERROR_RDBMS", message)
        bucket, name = _split_gs_uri(context["uri"])
        assert self._http is not None
        gcs = self.settings.gcs.rstrip("/")
        async with self._http.get(f"{gcs}/storage/v1/b/{_q(bucket)}") as resp:
            if resp.status == 404:
                raise OperationFailed("INVALID_REQUEST", f"The bucket {bucket} does not exist.")
            resp.raise_for_status()
        async with self._http.get(f"{gcs}/storage/v1/b/{_q(bucket)}/o/{_q(name)}") as resp:
            if resp.status == 200:
                raise OperationFailed("INVALID_REQUEST", f"The file {context['uri']} already exists.")
        database = context["databases"][0]
        data = await self._pg_dump(instance, database)
        if name.endswith(".gz"):
            data = gzip.compress(data)
        content_type = "application/gzip" if name.endswith(".gz") else "application/sql"
        params = {"uploadType": "media", "name": name, "ifGenerationMatch": "0"}
        url = f"{gcs}/upload/storage/v1/b/{_q(bucket)}/o"
        async with self._http.post(url, params=params, data=data, headers={"Content-Type": content_type}) as resp:
            if resp.status == 412:
                raise OperationFailed("INVALID_REQUEST", f"The file {context['uri']} already exists.")
            resp.raise_for_status()
        self.counts["exportsWritten"] += 1

    async def _pg_dump(self, instance: Instance, database: str) -> bytes:
        try:
            return await pg_dump_bytes(with_database(instance.dsn, database), "plain", self.settings.workdir)
        except DumpFailed as exc:
            raise OperationFailed("ERROR_RDBMS", str(exc)) from None

    # -- databases of the instance's server -----------------------------------------------------------------

    def _database_resource(self, instance: Instance, name: str) -> Obj:
        return {
            "kind": "sql#database",
            "name": name,
            "charset": "UTF8",
            "collation": "en_US.UTF8",
            "instance": instance.name,
            "project": instance.project,
            "selfLink": f"{self.base}/v1/projects/{instance.project}/instances/{instance.name}/databases/{_q(name)}",
        }

    @staticmethod
    def _postgres(instance: Instance) -> None:
        if not instance.database_version.startswith("POSTGRES"):
            message = f"fake sqladmin has no {instance.database_version} server: only its registered names exist"
            raise OperationFailed("ERROR_RDBMS", message)

    async def _has_database(self, instance: Instance, name: str) -> bool:
        if not instance.database_version.startswith("POSTGRES"):
            return name in instance.databases
        found = await _psql(
            with_database(instance.dsn, "postgres"), f"SELECT 1 FROM pg_database WHERE datname = {_literal(name)}"
        )
        return found.strip() == "1"

    async def _create_database(self, instance: Instance, name: str) -> None:
        self._postgres(instance)
        await _psql(with_database(instance.dsn, "postgres"), f"CREATE DATABASE {quoted(name)}")

    async def _drop_database(self, instance: Instance, name: str) -> None:
        self._postgres(instance)
        await _psql(with_database(instance.dsn, "postgres"), f"DROP DATABASE {quoted(name)} WITH (FORCE)")

    async def _import(self, instance: Instance, context: Obj) -> None:
        self._postgres(instance)
        database = str(context["database"])
        if not await self._has_database(instance, database):
            raise OperationFailed("ERROR_RDBMS", f'pq: database "{database}" does not exist')
        bucket, name = _split_gs_uri(context["uri"])
        assert self._http is not None
        url = f"{self.settings.gcs.rstrip('/')}/storage/v1/b/{_q(bucket)}/o/{_q(name)}"
        async with self._http.get(url, params={"alt": "media"}) as resp:
            if resp.status == 404:
                raise OperationFailed("INVALID_REQUEST", f"The file {context['uri']} does not exist.")
            resp.raise_for_status()
            data = await resp.read()
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        await _psql(with_database(instance.dsn, database), stdin=data)

    # -- test control ---------------------------------------------------------------------------------------

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def add_instance(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        try:
            instance = Instance(
                project=str(body["project"]),
                name=str(body["instance"]),
                database_version=str(body.get("databaseVersion", "POSTGRES_15")),
                dsn=str(body["dsn"]),
                region=str(body.get("region", "us-central1")),
                databases=[str(name) for name in body.get("databases", [])],
            )
        except KeyError as missing:
            return web.json_response({"error": f"missing {missing}"}, status=400)
        self.instances[(instance.project, instance.name)] = instance
        return web.json_response(instance.resource(self.base))

    async def configure(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        if body.get("pendingSeconds") is not None:
            self.settings.pending_seconds = float(body["pendingSeconds"])
        if body.get("runningSeconds") is not None:
            self.settings.running_seconds = float(body["runningSeconds"])
        return web.json_response(
            {"pendingSeconds": self.settings.pending_seconds, "runningSeconds": self.settings.running_seconds}
        )

    async def hold(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        if body.get("hold"):
            self.held_types = {str(t) for t in body.get("types") or []}
            self.released.clear()
        else:
            self.released.set()
        return web.json_response({"hold": not self.released.is_set(), "types": sorted(self.held_types)})

    async def inject(self, request: web.Request) -> web.Response:
        body = await _json_body(request) or {}
        if body.get("conflicts") is not None:
            self.conflicts_to_inject = int(body["conflicts"])
        if body.get("exportError") is not None:
            self.export_errors.append(str(body["exportError"]))
        return web.json_response({"conflicts": self.conflicts_to_inject, "exportErrors": len(self.export_errors)})

    async def state(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "instances": [instance.resource(self.base) for instance in self.instances.values()],
                "backupRuns": self.backup_runs,
                "operations": self.operations,
                "counts": self.counts,
                "hold": not self.released.is_set(),
                "issuedTokens": self.issuer.issued,
            }
        )

    async def reset(self, _request: web.Request) -> web.Response:
        """Back to the state right after start; issued access tokens stay valid (clients cache them)."""
        self.released.set()
        await self._cancel_tasks()
        self.settings.pending_seconds, self.settings.running_seconds = self._defaults
        self._clear()
        return web.json_response({"reset": True})

    def add_routes(self, app: web.Application) -> None:
        instance = "/v1/projects/{project}/instances/{instance}"
        app.router.add_get(instance, self.get_instance)
        app.router.add_get(f"{instance}/databases", self.list_databases)
        app.router.add_post(f"{instance}/databases", self.insert_database)
        app.router.add_get(instance + "/databases/{database}", self.get_database)
        app.router.add_delete(instance + "/databases/{database}", self.delete_database)
        app.router.add_post(f"{instance}/import", self.import_)
        app.router.add_post(f"{instance}/backupRuns", self.insert_backup_run)
        app.router.add_get(f"{instance}/backupRuns", self.list_backup_runs)
        app.router.add_get(instance + "/backupRuns/{id}", self.get_backup_run)
        app.router.add_post(f"{instance}/export", self.export)
        app.router.add_get("/v1/projects/{project}/operations", self.list_operations)
        app.router.add_get("/v1/projects/{project}/operations/{operation}", self.get_operation)
        app.router.add_get("/_fake/health", self.health)
        app.router.add_post("/_fake/instances", self.add_instance)
        app.router.add_post("/_fake/config", self.configure)
        app.router.add_post("/_fake/hold", self.hold)
        app.router.add_post("/_fake/inject", self.inject)
        app.router.add_get("/_fake/state", self.state)
        app.router.add_post("/_fake/reset", self.reset)


async def _json_body(request: web.Request) -> Obj | None:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _split_gs_uri(uri: str) -> tuple[str, str]:
    parsed = urllib.parse.urlsplit(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _validate_import(context: Obj, instance: Instance) -> str | None:
    if context.get("fileType", "SQL") != "SQL":
        return f"fileType {context.get('fileType')} is not supported by the fake (SQL only)."
    uri = context.get("uri")
    bucket, name = _split_gs_uri(uri) if isinstance(uri, str) and uri.startswith("gs://") else ("", "")
    if not bucket or not name or name.endswith("/"):
        return "The URI must be a Cloud Storage path of the form gs://bucketName/fileName."
    database = context.get("database")
    if instance.database_version.startswith("POSTGRES") and (not isinstance(database, str) or not database):
        return "database is required to import a SQL file into PostgreSQL."
    return None


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _psql(dsn: str, command: str | None = None, *, stdin: bytes | None = None) -> str:
    """``psql`` (``lc2backup.testing.dumps.psql``): a failure is the operation's, with psql's message."""
    try:
        return await psql(dsn, *([command] if command is not None else []), script=stdin)
    except DumpFailed as exc:
        raise OperationFailed("ERROR_RDBMS", str(exc)[-500:]) from None


def _validate_export(context: Obj, instance: Instance) -> str | None:
    """The request-time checks; what only the export itself can find out ends the operation with an error."""
    if context.get("fileType", "SQL") != "SQL":
        return f"fileType {context.get('fileType')} is not supported by the fake (SQL only)."
    uri = context.get("uri")
    if not isinstance(uri, str) or not uri.startswith("gs://"):
        return "The URI must be a Cloud Storage path of the form gs://bucketName/fileName."
    bucket, name = _split_gs_uri(uri)
    if not bucket or not name or name.endswith("/"):
        return "The URI must be a Cloud Storage path of the form gs://bucketName/fileName."
    databases = context.get("databases") or []
    if not isinstance(databases, list) or not all(isinstance(d, str) and d for d in databases):
        return "databases must be a list of database names."
    if instance.database_version.startswith("POSTGRES") and len(databases) != 1:
        return "Exactly one database must be specified for a PostgreSQL SQL export."
    return None


def create_app(settings: Settings, refresh_token: str, base: str) -> web.Application:
    issuer = TokenIssuer(refresh_token)
    sqladmin = SqlAdmin(settings, issuer, base)
    app = web.Application(middlewares=[sqladmin.authenticate])
    issuer.add_routes(app)
    sqladmin.add_routes(app)
    app.on_startup.append(sqladmin.open)
    app.on_cleanup.append(sqladmin.close)
    return app


async def serve(host: str, port: int, settings: Settings, refresh_token: str) -> None:
    app = create_app(settings, refresh_token, f"http://{host}:{port}")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("fake sqladmin listening on http://%s:%d (GCS %s)", host, port, settings.gcs)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Cloud SQL Admin API v1 with a local OAuth token endpoint")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gcs", required=True, help="fake-gcs-server endpoint, http://127.0.0.1:N")
    parser.add_argument("--refresh-token", required=True, help="the one refresh token /token accepts")
    parser.add_argument("--pending-seconds", type=float, default=0.3)
    parser.add_argument("--running-seconds", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()), help="for pg_dump output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sqladmin %(levelname)s %(message)s")
    settings = Settings(args.gcs, args.pending_seconds, args.running_seconds, args.workdir)
    asyncio.run(serve(args.host, args.port, settings, args.refresh_token))


@dataclass
class FakeSqlAdmin(LoopbackServer):
    """The fake as a process on 127.0.0.1; ``token_uri`` is its OAuth endpoint (see ``tokens.write_adc_file``)."""

    name = "fake-sqladmin"
    ready_path = "/_fake/health"

    gcs_endpoint: str
    refresh_token: str = field(repr=False)
    pending_seconds: float = 0.3
    running_seconds: float = 1.0

    @property
    def token_uri(self) -> str:
        return f"{self.endpoint}/token"

    @property
    def tokeninfo_uri(self) -> str:
        """Answers 200 for a token ``token_uri`` issued, 400 otherwise (for another fake to check tokens)."""
        return f"{self.endpoint}/tokeninfo"

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "lc2backup.testing.gcp.sqladmin", "--host", LOOPBACK, "--port", str(self.port)]
        argv += ["--gcs", self.gcs_endpoint, "--refresh-token", self.refresh_token]
        argv += ["--pending-seconds", str(self.pending_seconds), "--running-seconds", str(self.running_seconds)]
        return [*argv, "--workdir", str(self.directory / "dumps")]

    def _call(self, method: str, path: str, body: Obj | None = None) -> Obj:
        doc: Obj = call_json(f"{self.endpoint}/_fake/{path}", method, body)
        return doc

    def add_instance(
        self,
        project: str,
        instance: str,
        dsn: str,
        database_version: str = "POSTGRES_15",
        databases: list[str] | None = None,
    ) -> Obj:
        """Register an instance backed by the PostgreSQL at ``dsn`` (an export replaces its database name);
        ``databases`` is what ``databases.list`` answers."""
        body = {
            "project": project,
            "instance": instance,
            "databaseVersion": database_version,
            "dsn": dsn,
            "databases": databases or [],
        }
        return self._call("POST", "instances", body)

    def configure(self, pending_seconds: float | None = None, running_seconds: float | None = None) -> Obj:
        """Time each new operation spends PENDING and (at least) RUNNING."""
        return self._call("POST", "config", {"pendingSeconds": pending_seconds, "runningSeconds": running_seconds})

    def hold(self, on: bool, types: list[str] | None = None) -> None:
        """While held, no operation (of ``types``, e.g. ``["IMPORT"]``; default every type) leaves RUNNING; its
        work (a dump, an import) still runs to completion."""
        self._call("POST", "hold", {"hold": on, "types": types or []})

    def inject_conflicts(self, n: int) -> None:
        """The next ``n`` backupRuns.insert / instances.export calls answer 409 operationInProgress."""
        self._call("POST", "inject", {"conflicts": n})

    def inject_export_error(self, message: str) -> None:
        """The next export ends DONE with this error (and writes nothing)."""
        self._call("POST", "inject", {"exportError": message})

    def state(self) -> Obj:
        """``backupRuns``, ``operations`` (oldest first), ``counts`` of effects (``imports``: per
        ``<instance>/<database>``), ``instances``, ``hold``, and ``issuedTokens``: every access token ``/token``
        handed out (to look for leaked credentials)."""
        return self._call("GET", "state")

    def reset(self) -> None:
        """Forget instances, runs, operations, counts, injections and hold; issued tokens stay valid."""
        self._call("POST", "reset", {})


if __name__ == "__main__":
    main()
