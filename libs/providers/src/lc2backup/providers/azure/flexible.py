"""The Azure database branch: an on-demand backup of a flexible server (the fast-restore artefact), then a
long-term-retention backup streamed by Azure into the backup container (the portable copy).

PostgreSQL (azure-mgmt-postgresqlflexibleservers): ``backups_automatic_and_on_demand.begin_create`` under the
backup's deterministic name; ``backups_long_term_retention.check_prerequisites`` then ``begin_start`` with a SAS
of the destination container, followed with ``get`` by the same name (``percentComplete`` is the progress).
No database byte passes through us: Azure writes the files straight into the container. MySQL flexible servers
are refused by name before anything starts: their backup-and-export operation has no lookup by name, so a
redelivery could not find the export it started (not built yet; docs/azure.md).

A redelivery finds what an earlier delivery started by its name (``get`` of the backup / the LTR operation)
instead of starting another. An on-demand backup cannot be read until it exists, so its start records
azure-core's continuation token of the long-running operation (URLs and status, no credential; the SAS travels
only in the LTR request's body, never in a token, event or log) and a check resumes the poller from it.
The SAS is a user-delegation SAS of one container, create and write only, valid ``LC2_AZURE__SAS_HOURS``.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo
from lc2backup.providers.azure.clients import AzureClients
from lc2backup.providers.azure.errors import AzureCall
from lc2backup.providers.azure.names import ServerRef, backup_name
from lc2backup.providers.azure.settings import AzureSettings
from lc2backup.providers.base import BackupJob, Capabilities, ExportProgress, ExportStatus, SnapshotStatus
from lc2backup.providers.errors import PermanentProviderError

FORMAT = "azure-ltr"
RESTORABLE = True
ROLE = "the built-in role 'Contributor' on the server (or a custom role with its backups/* actions)"
_FIX = "check spec.database.instanceId"
_ENDED = {"succeeded", "failed", "canceled", "cancelled"}
T = TypeVar("T")


class FlexibleServerProvider:
    name = "azure"
    capabilities = Capabilities(restorable=frozenset({"snapshot", "export"}))  # managed operations, polled

    def __init__(self, clients: AzureClients, settings: AzureSettings) -> None:
        self._clients = clients
        self._settings = settings

    def _server(self, job: BackupJob) -> ServerRef:
        ref = ServerRef.parse(job.spec.database.instance_id, self._settings.subscription_id)
        if ref.engine != "postgres":
            raise PermanentProviderError(
                f"{ref.id} is a MySQL flexible server: the azure provider backs up PostgreSQL flexible servers only"
                " for now (docs/azure.md)"
            )
        return ref

    def _call(self, resource: str, grant: str = ROLE, fix: str = _FIX) -> AzureCall:
        return AzureCall(grant, resource, fix, self._settings.transient_retry_seconds)

    async def _run(self, call: AzureCall, action: Callable[[], Awaitable[T]]) -> T:
        try:
            return await action()
        except Exception as exc:
            raise call.translate(exc) from exc

    async def _find(self, call: AzureCall, action: Callable[[], Awaitable[T]]) -> T | None:
        """``action``'s answer, or None when Azure says it does not exist (404)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await action()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise call.translate(exc) from exc

    async def _describe(self, ref: ServerRef) -> Any:
        client = await self._clients.management(ref.subscription)
        call = self._call(f"flexible server {ref.id}", "the built-in role 'Reader' on the server")
        return await self._run(call, lambda: client.servers.get(ref.resource_group, ref.server))

    # the on-demand backup

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        ref = self._server(job)
        await self._describe(ref)  # a wrong name fails here, by name, before anything starts
        client = await self._clients.management(ref.subscription)
        name = backup_name(job.backup_id)
        snapshot_id = f"{ref.id}/backups/{name}"
        call = self._call(f"on-demand backup {snapshot_id}")
        ops = client.backups_automatic_and_on_demand
        if await self._find(call, lambda: ops.get(ref.resource_group, ref.server, name)) is not None:
            return DatabaseSnapshotStarted(snapshot_id=snapshot_id, instance_id=job.spec.database.instance_id)
        poller = await self._run(call, lambda: ops.begin_create(ref.resource_group, ref.server, name))
        return DatabaseSnapshotStarted(
            snapshot_id=snapshot_id, instance_id=job.spec.database.instance_id, operation=poller.continuation_token()
        )

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        ref = self._server(job)
        client = await self._clients.management(ref.subscription)
        name = snapshot.snapshot_id.rsplit("/", 1)[1]
        call = self._call(f"on-demand backup {snapshot.snapshot_id}")
        ops = client.backups_automatic_and_on_demand
        backup = await self._find(call, lambda: ops.get(ref.resource_group, ref.server, name))
        if backup is not None:  # it can be read once it exists
            engine, version = await self._engine(ref)
            return SnapshotStatus(
                done=True, location=str(backup.id or snapshot.snapshot_id), engine=engine, engine_version=version
            )
        if snapshot.operation is None:
            return SnapshotStatus(done=False)  # adopted while it was being created: it shows up when done
        failure = await self._poll(call, ops, ref, name, snapshot.operation)
        if failure:
            return SnapshotStatus(
                done=False, error=f"Azure could not take the on-demand backup {snapshot.snapshot_id}: {failure}"
            )
        return SnapshotStatus(done=False)

    async def _poll(self, call: AzureCall, ops: Any, ref: ServerRef, name: str, token: str) -> str | None:
        """One look at the long-running operation of ``token``: Azure's error when it ended failed, else None."""
        from azure.core.exceptions import HttpResponseError

        poller = await self._run(
            call, lambda: ops.begin_create(ref.resource_group, ref.server, name, continuation_token=token)
        )
        method = poller.polling_method()
        await self._run(call, method.update_status)
        if str(method.status()).lower() not in _ENDED - {"succeeded"}:
            return None
        try:
            await poller.result()
        except HttpResponseError as exc:
            error = getattr(exc, "error", None)
            code, message = getattr(error, "code", None), getattr(error, "message", None) or str(exc).splitlines()[0]
            return f"{code}: {message}" if code else str(message)
        return f"the operation ended {method.status()}"

    async def _engine(self, ref: ServerRef) -> tuple[str, str | None]:
        server = await self._describe(ref)
        properties = getattr(server, "properties", server)
        version = getattr(properties, "version", None)
        return ref.engine, str(version) if version is not None else None

    # the long-term-retention backup into the backup container

    async def start_export(self, job: BackupJob, snapshot: SnapshotInfo | None) -> DatabaseExportStarted:
        ref, layout = self._server(job), job.layout
        await self._describe(ref)
        client = await self._clients.management(ref.subscription)
        name = backup_name(job.backup_id)
        location = layout.uri(f"{name}/")  # Azure names the files it writes into the container, under the backup's name
        operation_id = f"{ref.id}/ltrBackupOperations/{name}"
        started = DatabaseExportStarted(
            operation_id=operation_id, location=location, format=FORMAT, restorable=RESTORABLE
        )
        call = self._call(f"long-term-retention backup {operation_id}")
        ltr = client.backups_long_term_retention
        if await self._find(call, lambda: ltr.get(ref.resource_group, ref.server, name)) is not None:
            return started  # an earlier delivery started it
        settings = {"backupSettings": {"backupName": name}}
        await self._run(call, lambda: ltr.check_prerequisites(ref.resource_group, ref.server, settings))
        sas_url = await self._container_sas(job)
        body = {**settings, "targetDetails": {"sasUriList": [sas_url]}}
        await self._run(call, lambda: ltr.begin_start(ref.resource_group, ref.server, body))
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
        key = await self._run(call, lambda: blobs.get_user_delegation_key(now - datetime.timedelta(minutes=5), expiry))
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
        client = await self._clients.management(server.subscription)
        name = ref.operation_id.rsplit("/", 1)[1]
        call = self._call(f"long-term-retention backup {ref.operation_id}")
        ltr = client.backups_long_term_retention
        operation = await self._run(call, lambda: ltr.get(server.resource_group, server.server, name))
        p = operation.properties
        status = str(getattr(p.status, "value", p.status) or "").lower()  # an ExecutionStatus, or a newer string
        percent = int(p.percent_complete) if p.percent_complete is not None else None
        written, total = p.data_transferred_in_bytes, p.datasource_size_in_bytes
        if status in ("failed", "cancelled", "canceled"):
            why = ": ".join(str(x) for x in (p.error_code, p.error_message) if x) or "no reason given"
            return ExportStatus(done=False, error=f"Azure's long-term-retention backup {name} ended {status}: {why}")
        if status != "succeeded":
            return ExportStatus(done=False, percent=percent, bytes_written=written, estimated_total_bytes=total)
        engine, version = await self._engine(server)
        return ExportStatus(
            done=True, size_bytes=written, percent=100, bytes_written=written, engine=engine, engine_version=version
        )


@contextlib.asynccontextmanager
async def open_database_provider(settings: AzureSettings) -> AsyncIterator[FlexibleServerProvider]:
    async with contextlib.AsyncExitStack() as stack:
        yield FlexibleServerProvider(AzureClients(settings, stack), settings)
