"""The GCP database branch: a Cloud SQL backup run (the fast-restore artefact), then a SQL export to GCS.

``type: snapshot`` runs ``backupRuns.insert`` and polls the run to SUCCESSFUL, then ``instances.export``;
``type: dump`` runs the export alone. The export is a plain SQL dump written by Cloud SQL itself straight into
``gs://<destination>/<backup root>database/<database>.sql.gz`` (gzip, because of the name): restorable with
``instances.import`` or psql/mysql, even after the instance is gone. No database byte passes through us.

Cloud SQL runs one admin operation per instance at a time and answers 409 ``operationInProgress`` to a second
one: that is retried with backoff inside the call, then durably — never a failure. Neither call takes a
client token, so before starting, a step looks for what an earlier delivery may have started: the backup run
by its description, the export's operation by its URI (``operations.list`` of the instance).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo
from lc2backup.providers.base import BackupJob, Capabilities, ExportProgress, ExportStatus, SnapshotStatus
from lc2backup.providers.errors import PermanentProviderError, TransientProviderError
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.errors import GcpCall, is_busy
from lc2backup.providers.gcp.names import InstanceRef, description_of
from lc2backup.providers.gcp.settings import GcpSettings
from lc2backup.providers.gcp.storage import GcsBuckets

FORMAT = "sql.gz"
RESTORABLE = True
RUN_FAILED = frozenset({"FAILED", "SKIPPED", "DELETION_PENDING", "DELETION_FAILED", "DELETED"})
MYSQL_SYSTEM = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
_LIST_PAGES = 5  # backup runs / operations scanned for ours (newest first: an earlier delivery's is near the top)
_FIX = "check spec.database.instanceId and LC2_GCP__PROJECT"


def engine_of(database_version: str) -> tuple[str | None, str | None]:
    """``POSTGRES_15`` → (postgres, 15); ``MYSQL_8_0_31`` → (mysql, 8.0.31)."""
    family, _, version = database_version.partition("_")
    engine = {"POSTGRES": "postgres", "MYSQL": "mysql", "SQLSERVER": "sqlserver"}.get(family)
    return engine, version.replace("_", ".") or None


def operation_failure(operation: dict[str, Any]) -> str | None:
    """The API's message when a DONE operation failed (``error.errors[]``), else None."""
    errors = (operation.get("error") or {}).get("errors") or []
    if not errors:
        return None
    return "; ".join(f"{e.get('code') or 'error'}: {e.get('message') or '(no message)'}" for e in errors)


class CloudSqlDatabaseProvider:
    name = "gcp"
    capabilities = Capabilities(restorable=frozenset({"snapshot", "export"}))  # managed operations, polled

    def __init__(self, clients: GcpClients, settings: GcpSettings) -> None:
        self._clients = clients
        self._settings = settings
        self._buckets = GcsBuckets(clients)

    def _call(self, permission: str, ref: InstanceRef | str, fix: str = _FIX) -> GcpCall:
        resource = f"Cloud SQL instance {ref.path!r}" if isinstance(ref, InstanceRef) else ref
        return GcpCall(permission, resource, fix, self._settings.transient_retry_seconds)

    async def _instance(self, job: BackupJob) -> InstanceRef:
        project = await self._clients.run(lambda: self._clients.project)
        return InstanceRef.parse(job.spec.database.instance_id, project)

    async def _sql(self, call: GcpCall, build: Callable[[Any], Any]) -> dict[str, Any]:
        try:
            return await self._clients.sql(build)
        except Exception as exc:
            raise call.translate(exc) from exc

    async def _submit(self, call: GcpCall, build: Callable[[Any], Any]) -> dict[str, Any]:
        """Start an admin operation, retrying Cloud SQL's 409 (another operation runs) with backoff; when it
        stays busy, the step is retried durably (transient), never failed."""
        delay = self._settings.busy_backoff_seconds
        for attempt in range(self._settings.busy_retries + 1):
            try:
                return await self._clients.sql(build)
            except Exception as exc:
                if not is_busy(exc):
                    raise call.translate(exc) from exc
                if attempt == self._settings.busy_retries:
                    raise TransientProviderError(
                        f"{call.resource} is busy with another operation (HTTP 409 operationInProgress): will retry",
                        self._settings.transient_retry_seconds,
                    ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    @staticmethod
    def _listing(collection: str, ref: InstanceRef, token: str | None) -> Callable[[Any], Any]:
        """One page of ``backupRuns.list`` or ``operations.list`` of the instance, newest first."""
        return lambda s: getattr(s, collection)().list(
            project=ref.project, instance=ref.instance, maxResults=100, pageToken=token
        )

    async def _describe(self, ref: InstanceRef) -> dict[str, Any]:
        return await self._sql(
            self._call("cloudsql.instances.get", ref),
            lambda s: s.instances().get(project=ref.project, instance=ref.instance),
        )

    # the backup run

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        ref = await self._instance(job)
        await self._describe(ref)  # a wrong name fails here, by name, before anything starts
        description = description_of(job.backup_id)
        run_id = await self._find_run(ref, description)
        if run_id is None:
            operation = await self._submit(
                self._call("cloudsql.backupRuns.create", ref),
                lambda s: s.backupRuns().insert(
                    project=ref.project, instance=ref.instance, body={"description": description}
                ),
            )
            run_id = str((operation.get("backupContext") or {}).get("backupId") or "")
            if not run_id:  # older API revisions leave it out: the run carries our description
                run_id = await self._find_run(ref, description)
            if not run_id:
                raise TransientProviderError(
                    f"backup run {description!r} not listed yet on {ref.path}: will look again"
                )
        return DatabaseSnapshotStarted(
            snapshot_id=f"{ref.path}/backupRuns/{run_id}", instance_id=job.spec.database.instance_id
        )

    async def _find_run(self, ref: InstanceRef, description: str) -> str | None:
        call = self._call("cloudsql.backupRuns.list", ref)
        token: str | None = None
        for _ in range(_LIST_PAGES):
            page = await self._sql(call, self._listing("backupRuns", ref, token))
            for run in page.get("items", []):
                if run.get("description") == description:
                    return str(run["id"])
            token = page.get("nextPageToken")
            if not token:
                return None
        return None

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        _, project, _, instance, _, run_id = snapshot.snapshot_id.split("/")
        ref = InstanceRef(project, instance)
        run = await self._sql(
            self._call("cloudsql.backupRuns.get", f"backup run {snapshot.snapshot_id!r}", "it was deleted meanwhile"),
            lambda s: s.backupRuns().get(project=project, instance=instance, id=run_id),
        )
        status = str(run.get("status", ""))
        if status in RUN_FAILED:
            why = (run.get("error") or {}).get("message") or (run.get("error") or {}).get("code")
            return SnapshotStatus(
                done=False, error=f"Cloud SQL reports the backup run {status}" + (f": {why}" if why else "")
            )
        if status != "SUCCESSFUL":
            return SnapshotStatus(done=False)
        engine, version = engine_of(str((await self._describe(ref)).get("databaseVersion", "")))
        return SnapshotStatus(
            done=True,
            location=str(run.get("selfLink") or snapshot.snapshot_id),
            engine=engine,
            engine_version=version,
            percent=100,
        )

    # the SQL export

    async def start_export(self, job: BackupJob, snapshot: SnapshotInfo | None) -> DatabaseExportStarted:
        ref, layout = await self._instance(job), job.layout
        instance = await self._describe(ref)
        await self._buckets.require(layout.bucket, "destination bucket", "spec.documentLibrary.destinationBucket")
        databases = await self._databases(job, ref, str(instance.get("databaseVersion", "")))
        name = job.spec.database.database_name or "all-databases"
        uri = layout.uri(layout.database_key(name, FORMAT))
        operation = await self._find_export(ref, uri)
        if operation is None:
            context = {
                "kind": "sql#exportContext",
                "fileType": "SQL",
                "uri": uri,
                "databases": databases,
                "offload": self._settings.export_offload,
            }
            operation = await self._submit(
                self._call("cloudsql.instances.export", ref),
                lambda s: s.instances().export(
                    project=ref.project, instance=ref.instance, body={"exportContext": context}
                ),
            )
        return DatabaseExportStarted(
            operation_id=f"projects/{ref.project}/operations/{operation['name']}",
            location=uri,
            format=FORMAT,
            restorable=RESTORABLE,
        )

    async def _databases(self, job: BackupJob, ref: InstanceRef, version: str) -> list[str]:
        """PostgreSQL: exactly the spec's database (Cloud SQL exports one per SQL file). MySQL: the spec's, or
        every user database but ``databasesToIgnore``."""
        db = job.spec.database
        if db.database_name:
            return [db.database_name]
        if not version.startswith("MYSQL"):
            raise PermanentProviderError(
                f"spec.database.databaseName is required: Cloud SQL exports one PostgreSQL database per SQL file "
                f"({ref.path} is {version or 'not MySQL'})"
            )
        listed = await self._sql(
            self._call("cloudsql.databases.list", ref),
            lambda s: s.databases().list(project=ref.project, instance=ref.instance),
        )
        ignore = MYSQL_SYSTEM | set(db.databases_to_ignore)
        names = sorted(str(d["name"]) for d in listed.get("items", []) if str(d["name"]) not in ignore)
        if not names:
            raise PermanentProviderError(f"{ref.path} has no database left to export after databasesToIgnore")
        return names

    async def _find_export(self, ref: InstanceRef, uri: str) -> dict[str, Any] | None:
        """The export operation an earlier delivery started for ``uri`` (newest first), if any."""
        call = self._call("cloudsql.instances.get", ref)
        token: str | None = None
        for _ in range(_LIST_PAGES):
            page = await self._sql(call, self._listing("operations", ref, token))
            for op in page.get("items", []):
                if op.get("operationType") == "EXPORT" and (op.get("exportContext") or {}).get("uri") == uri:
                    found: dict[str, Any] = op
                    return found
            token = page.get("nextPageToken")
            if not token:
                return None
        return None

    async def check_export(self, job: BackupJob, ref: ExportInfo, progress: ExportProgress) -> ExportStatus:
        _, project, _, name = ref.operation_id.split("/")
        operation = await self._sql(
            self._call("cloudsql.instances.get", f"Cloud SQL operation {ref.operation_id!r}"),
            lambda s: s.operations().get(project=project, operation=name),
        )
        if operation.get("status") != "DONE":
            return ExportStatus(done=False)
        failure = operation_failure(operation)
        if failure:
            return ExportStatus(done=False, error=f"Cloud SQL export to {ref.location} failed: {failure}")
        size = await self._buckets.size(ref.location)
        instance = await self._describe(await self._instance(job))
        engine, version = engine_of(str(instance.get("databaseVersion", "")))
        return ExportStatus(done=True, size_bytes=size, engine=engine, engine_version=version, percent=100)


@contextlib.asynccontextmanager
async def open_database_provider(settings: GcpSettings) -> AsyncIterator[CloudSqlDatabaseProvider]:
    yield CloudSqlDatabaseProvider(GcpClients(settings), settings)
