"""The GCP database branch: a Cloud SQL backup run (the fast-restore artefact), then a SQL export to GCS.

``type: snapshot`` runs ``backupRuns.insert`` and polls the run to SUCCESSFUL, then ``instances.export``;
``type: dump`` runs the export alone. The export is a plain SQL dump written by Cloud SQL itself straight into
``gs://<destination>/<backup root>database/<database>.sql.gz`` (gzip, because of the name): restorable with
``instances.import`` or psql/mysql, even after the instance is gone. No database byte passes through us.

Cloud SQL's 409 ``operationInProgress`` is retried, never a failure, and neither call takes a client token: before
starting, a step looks for what an earlier delivery may have started, the backup run by its description, the
export's operation by its URI (``sqladmin.SqlAdmin``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo
from lc2backup.providers.base import BackupJob, Capabilities, ExportProgress, ExportStatus, SnapshotStatus
from lc2backup.providers.errors import PermanentProviderError, TransientProviderError
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.names import InstanceRef, description_of
from lc2backup.providers.gcp.settings import GcpSettings
from lc2backup.providers.gcp.sqladmin import SqlAdmin, operation_failure
from lc2backup.providers.gcp.storage import GcsBuckets

FORMAT = "sql.gz"
RESTORABLE = True
RUN_FAILED = frozenset({"FAILED", "SKIPPED", "DELETION_PENDING", "DELETION_FAILED", "DELETED"})
MYSQL_SYSTEM = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


def engine_of(database_version: str) -> tuple[str | None, str | None]:
    """``POSTGRES_15`` → (postgres, 15); ``MYSQL_8_0_31`` → (mysql, 8.0.31)."""
    family, _, version = database_version.partition("_")
    engine = {"POSTGRES": "postgres", "MYSQL": "mysql", "SQLSERVER": "sqlserver"}.get(family)
    return engine, version.replace("_", ".") or None


class CloudSqlDatabaseProvider:
    name = "gcp"
    capabilities = Capabilities(restorable=frozenset({"snapshot", "export"}))  # managed operations, polled

    def __init__(self, clients: GcpClients, settings: GcpSettings) -> None:
        self._clients = clients
        self._settings = settings
        self._admin = SqlAdmin(clients, settings)
        self._buckets = GcsBuckets(clients)

    async def _instance(self, job: BackupJob) -> InstanceRef:
        return await self._admin.instance(job.spec.database.instance_id)

    # the backup run

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        ref = await self._instance(job)
        await self._admin.describe(ref)  # a wrong name fails here, by name, before anything starts
        description = description_of(job.backup_id)
        run_id = await self._find_run(ref, description)
        if run_id is None:
            operation = await self._admin.submit(
                self._admin.call("cloudsql.backupRuns.create", ref),
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
        run = await self._admin.find("backupRuns", ref, lambda r: r.get("description") == description)
        return str(run["id"]) if run is not None else None

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        _, project, _, instance, _, run_id = snapshot.snapshot_id.split("/")
        ref = InstanceRef(project, instance)
        run = await self._admin.request(
            self._admin.call(
                "cloudsql.backupRuns.get", f"backup run {snapshot.snapshot_id!r}", "it was deleted meanwhile"
            ),
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
        engine, version = engine_of(str((await self._admin.describe(ref)).get("databaseVersion", "")))
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
        instance = await self._admin.describe(ref)
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
            operation = await self._admin.submit(
                self._admin.call("cloudsql.instances.export", ref),
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
        listed = await self._admin.request(
            self._admin.call("cloudsql.databases.list", ref),
            lambda s: s.databases().list(project=ref.project, instance=ref.instance),
        )
        ignore = MYSQL_SYSTEM | set(db.databases_to_ignore)
        names = sorted(str(d["name"]) for d in listed.get("items", []) if str(d["name"]) not in ignore)
        if not names:
            raise PermanentProviderError(f"{ref.path} has no database left to export after databasesToIgnore")
        return names

    async def _find_export(self, ref: InstanceRef, uri: str) -> dict[str, Any] | None:
        """The export operation an earlier delivery started for ``uri`` (newest first), if any."""
        return await self._admin.find(
            "operations",
            ref,
            lambda op: op.get("operationType") == "EXPORT" and (op.get("exportContext") or {}).get("uri") == uri,
        )

    async def check_export(self, job: BackupJob, ref: ExportInfo, progress: ExportProgress) -> ExportStatus:
        _, project, _, name = ref.operation_id.split("/")
        operation = await self._admin.operation(project, name)
        if operation.get("status") != "DONE":
            return ExportStatus(done=False)
        failure = operation_failure(operation)
        if failure:
            return ExportStatus(done=False, error=f"Cloud SQL export to {ref.location} failed: {failure}")
        size = await self._buckets.size(ref.location)
        instance = await self._admin.describe(await self._instance(job))
        engine, version = engine_of(str(instance.get("databaseVersion", "")))
        return ExportStatus(done=True, size_bytes=size, engine=engine, engine_version=version, percent=100)


@contextlib.asynccontextmanager
async def open_database_provider(settings: GcpSettings) -> AsyncIterator[CloudSqlDatabaseProvider]:
    yield CloudSqlDatabaseProvider(GcpClients(settings), settings)
