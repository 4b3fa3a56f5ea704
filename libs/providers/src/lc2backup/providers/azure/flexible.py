"""The Azure database branch: an on-demand backup of a flexible server (the fast-restore artefact), then a
portable copy written by Azure straight into the backup container. No database byte passes through us.

PostgreSQL (azure-mgmt-postgresqlflexibleservers): ``backups_automatic_and_on_demand.begin_create`` under the
backup's deterministic name; a long-term-retention (LTR) backup: ``backups_long_term_retention
.check_prerequisites`` then ``begin_start`` with a SAS of the destination container, followed with ``get`` by the
same name (``percentComplete`` is the progress).

MySQL (azure-mgmt-mysqlflexibleservers): ``long_running_backup.begin_create`` (``backupsV2``) under the same name,
read with ``long_running_backups.get`` from its PUT on (``provisioningState``); ``backup_and_export
.validate_backup`` then ``begin_create`` with the container's SAS.

A redelivery finds what an earlier delivery started by its name (``get`` of the backup / the LTR operation)
instead of starting another. Two operations cannot be read by name: PostgreSQL's on-demand backup until it
exists, and MySQL's backup-and-export ever. Their start records azure-core's continuation token of the
long-running operation (URLs and status, no credential; the SAS travels only in the request's body, never in a
token, event or log) and a check resumes the poller from it. A MySQL export whose start was sent but not yet
recorded when the process died is sent again under the same name (docs/azure.md).
The SAS is a user-delegation SAS of one container, create and write only, valid ``LC2_AZURE__SAS_HOURS``.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator
from typing import Any

from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo
from lc2backup.providers.azure.clients import AzureClients
from lc2backup.providers.azure.errors import ENDED, AzureCall
from lc2backup.providers.azure.names import ServerRef, backup_name
from lc2backup.providers.azure.settings import AzureSettings
from lc2backup.providers.base import BackupJob, Capabilities, ExportProgress, ExportStatus, SnapshotStatus

FORMATS = {"postgres": "azure-ltr", "mysql": "azure-mysql-export"}
RESTORABLE = True
ROLE = "the built-in role 'Contributor' on the server (or a custom role with its backups/* actions)"
_FIX = "check spec.database.instanceId"
_BACKUPS = {"postgres": "backups", "mysql": "backupsV2"}  # where the on-demand backup is, under the server
_EXPORTS = {"postgres": "ltrBackupOperations", "mysql": "backupAndExport"}


class FlexibleServerProvider:
    name = "azure"
    capabilities = Capabilities(restorable=frozenset({"snapshot", "export"}))  # managed operations, polled

    def __init__(self, clients: AzureClients, settings: AzureSettings) -> None:
        self._clients = clients
        self._settings = settings

    def _server(self, job: BackupJob) -> ServerRef:
        return ServerRef.parse(job.spec.database.instance_id, self._settings.subscription_id)

    async def _client(self, ref: ServerRef) -> Any:
        return await self._clients.management(ref.engine, ref.subscription)

    def _call(self, resource: str, grant: str = ROLE, fix: str = _FIX) -> AzureCall:
        return AzureCall(grant, resource, fix, self._settings.transient_retry_seconds)

    async def _describe(self, ref: ServerRef) -> Any:
        client = await self._client(ref)
        call = self._call(f"flexible server {ref.id}", "the built-in role 'Reader' on the server")
        return await call.run(lambda: client.servers.get(ref.resource_group, ref.server))

    async def _engine(self, ref: ServerRef) -> tuple[str, str | None]:
        server = await self._describe(ref)
        properties = getattr(server, "properties", server)
        version = getattr(properties, "version", None)
        return ref.engine, str(getattr(version, "value", version)) if version is not None else None

    # the on-demand backup

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        ref = self._server(job)
        await self._describe(ref)  # a wrong name fails here, by name, before anything starts
        client = await self._client(ref)
        name = backup_name(job.backup_id)
        snapshot_id = f"{ref.id}/{_BACKUPS[ref.engine]}/{name}"
        call = self._call(f"on-demand backup {snapshot_id}")
        instance_id = job.spec.database.instance_id
        group, server = ref.resource_group, ref.server
        if ref.engine == "mysql":  # readable from its PUT on: a check reads it, a redelivery finds it
            if await call.find(lambda: client.long_running_backups.get(group, server, name)) is None:
                await call.run(lambda: client.long_running_backup.begin_create(group, server, name))
            return DatabaseSnapshotStarted(snapshot_id=snapshot_id, instance_id=instance_id)
        ops = client.backups_automatic_and_on_demand
        if await call.find(lambda: ops.get(group, server, name)) is not None:
            return DatabaseSnapshotStarted(snapshot_id=snapshot_id, instance_id=instance_id)
        poller = await call.run(lambda: ops.begin_create(group, server, name))
        return DatabaseSnapshotStarted(
            snapshot_id=snapshot_id, instance_id=instance_id, operation=poller.continuation_token()
        )

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        ref = self._server(job)
        client = await self._client(ref)
        name = snapshot.snapshot_id.rsplit("/", 1)[1]
        call = self._call(f"on-demand backup {snapshot.snapshot_id}")
        group, server = ref.resource_group, ref.server
        failed = f"Azure could not take the on-demand backup {snapshot.snapshot_id}"
        if ref.engine == "mysql":
            backup = await call.find(lambda: client.long_running_backups.get(group, server, name))
            state = str(getattr(backup, "provisioning_state", None) or "").lower()
            if state in ENDED - {"succeeded"}:
                return SnapshotStatus(done=False, error=f"{failed}: its provisioningState is {state}")
            return await self._snapshot_done(ref, snapshot, backup if state == "succeeded" else None)
        ops = client.backups_automatic_and_on_demand
        backup = await call.find(lambda: ops.get(group, server, name))
        if backup is not None or snapshot.operation is None:  # readable once it exists; adopted ones show up then
            return await self._snapshot_done(ref, snapshot, backup)
        token = snapshot.operation
        status, detail = await call.look(lambda: ops.begin_create(group, server, name, continuation_token=token))
        if status == "failed":
            return SnapshotStatus(done=False, error=f"{failed}: {detail}")
        return SnapshotStatus(done=False)  # a succeeded one is read by the next check

    async def _snapshot_done(self, ref: ServerRef, snapshot: SnapshotInfo, backup: Any) -> SnapshotStatus:
        if backup is None:
            return SnapshotStatus(done=False)
        engine, version = await self._engine(ref)
        location = str(backup.id or snapshot.snapshot_id)
        return SnapshotStatus(done=True, location=location, engine=engine, engine_version=version)

    # the portable copy into the backup container

    async def start_export(self, job: BackupJob, snapshot: SnapshotInfo | None) -> DatabaseExportStarted:
        ref, layout = self._server(job), job.layout
        await self._describe(ref)
        client = await self._client(ref)
        name = backup_name(job.backup_id)
        operation_id = f"{ref.id}/{_EXPORTS[ref.engine]}/{name}"
        started = DatabaseExportStarted(
            operation_id=operation_id,
            location=layout.uri(f"{name}/"),  # Azure names the files it writes, under the backup's name
            format=FORMATS[ref.engine],
            restorable=RESTORABLE,
        )
        call = self._call(
            f"{'backup-and-export' if ref.engine == 'mysql' else 'long-term-retention backup'} {operation_id}"
        )
        group, server = ref.resource_group, ref.server
        settings = {"backupSettings": {"backupName": name}}
        if ref.engine == "mysql":
            await call.run(lambda: client.backup_and_export.validate_backup(group, server))
            target = {"objectType": "FullBackupStoreDetails", "sasUriList": [await self._container_sas(job)]}
            body = {**settings, "targetDetails": target}
            poller = await call.run(lambda: client.backup_and_export.begin_create(group, server, body))
            return started.model_copy(update={"operation": poller.continuation_token()})
        ltr = client.backups_long_term_retention
        if await call.find(lambda: ltr.get(group, server, name)) is not None:
            return started  # an earlier delivery started it
        await call.run(lambda: ltr.check_prerequisites(group, server, settings))
        body = {**settings, "targetDetails": {"sasUriList": [await self._container_sas(job)]}}
        await call.run(lambda: ltr.begin_start(group, server, body))
        return started

    async def _container_sas(self, job: BackupJob) -> str:
        """A user-delegation SAS of the destination container: create and write only, short-lived."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        account, container = job.spec.document_library.storage_account, job.layout.bucket
        assert account is not None  # required for provider azure (the spec's rule)
        blobs = await self._clients.blobs(account)
        now = datetime.datetime.now(datetime.UTC)
        expiry = now + datetime.timedelta(hours=self._settings.sas_hours)
        call = AzureCall(
            "the built-in role 'Storage Blob Delegator' on the storage account",
            f"storage account {account}",
            "check spec.documentLibrary.storageAccount",
            self._settings.transient_retry_seconds,
        )
        key = await call.run(lambda: blobs.get_user_delegation_key(now - datetime.timedelta(minutes=5), expiry))
        sas = generate_container_sas(
            account,
            container,
            user_delegation_key=key,
            permission=ContainerSasPermissions(create=True, write=True),
            expiry=expiry,
            start=now - datetime.timedelta(minutes=5),
            protocol="https",
        )
        return f"{self._clients.account_url(account)}/{container}?{sas}"

    async def check_export(self, job: BackupJob, ref: ExportInfo, progress: ExportProgress) -> ExportStatus:
        server = self._server(job)
        client = await self._client(server)
        name = ref.operation_id.rsplit("/", 1)[1]
        group, srv = server.resource_group, server.server
        if server.engine == "mysql":
            return await self._check_mysql_export(server, client, ref)
        call = self._call(f"long-term-retention backup {ref.operation_id}")
        operation = await call.run(lambda: client.backups_long_term_retention.get(group, srv, name))
        p = operation.properties
        status = str(getattr(p.status, "value", p.status) or "").lower()  # an ExecutionStatus, or a newer string
        percent = int(p.percent_complete) if p.percent_complete is not None else None
        written, total = p.data_transferred_in_bytes, p.datasource_size_in_bytes
        if status in ENDED - {"succeeded"}:
            why = ": ".join(str(x) for x in (p.error_code, p.error_message) if x) or "no reason given"
            return ExportStatus(done=False, error=f"Azure's long-term-retention backup {name} ended {status}: {why}")
        if status != "succeeded":
            return ExportStatus(done=False, percent=percent, bytes_written=written, estimated_total_bytes=total)
        return await self._export_done(server, written)

    async def _check_mysql_export(self, server: ServerRef, client: Any, ref: ExportInfo) -> ExportStatus:
        """Resumed from the continuation token its start recorded: MySQL's backup-and-export has no lookup by name
        and shows no progress before it ends."""
        call = self._call(f"backup-and-export {ref.operation_id}")
        token = ref.operation
        if token is None:
            return ExportStatus(done=False, error=f"no operation of the backup-and-export {ref.operation_id} recorded")
        exports, group, srv = client.backup_and_export, server.resource_group, server.server
        status, detail = await call.look(lambda: exports.begin_create(group, srv, {}, continuation_token=token))
        if status == "failed":
            return ExportStatus(done=False, error=f"Azure's backup-and-export {ref.operation_id} failed: {detail}")
        if status == "running":
            return ExportStatus(done=False)
        return await self._export_done(server, getattr(detail, "data_transferred_in_bytes", None))

    async def _export_done(self, server: ServerRef, written: int | None) -> ExportStatus:
        engine, version = await self._engine(server)
        return ExportStatus(
            done=True, size_bytes=written, percent=100, bytes_written=written, engine=engine, engine_version=version
        )


@contextlib.asynccontextmanager
async def open_database_provider(settings: AzureSettings) -> AsyncIterator[FlexibleServerProvider]:
    async with contextlib.AsyncExitStack() as stack:
        yield FlexibleServerProvider(AzureClients(settings, stack), settings)
