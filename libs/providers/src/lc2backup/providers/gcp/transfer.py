"""The GCP document-library branch: one Storage Transfer Service job per backup, GCS to GCS, run once.

The job's name derives from the backup id (``transferJobs/lc2-<backup id>``), so creating it again answers
ALREADY_EXISTS and is taken as done. It copies ``gs://<source>/<sourcePrefix>`` to the backup's
``documentlibrary/`` folder with ``overwriteWhen: NEVER`` (nothing already in the sink is written again)
and, for ``excludeGeneratedFiles``, ``objectConditions.excludePrefixes``: the literal Liferay prefixes per company
id (``<cid>/0/document_thumbnail/``, ``document_preview/``, ``adaptive/``, also under the store areas), the ids
found by a delimiter listing. STS takes no globs: the original design's ``**.thumbnail.**`` would match nothing.

Each poll reads the job's transfer operation (``list_operations`` with the JSON filter of project and job):
none listed and none named by the job (``latestOperationName``) means the job has not run, and it is run (STS
refuses a second run while one is active); its
counters are the progress; SUCCESS completes the branch, FAILED or ABORTED fails it with STS's error
breakdown. STS does not count what the exclude prefixes left out, so on success those prefixes are listed
(metadata only) and ``metadata.json`` still says how many generated files were skipped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from lc2backup.domain import TransferCounters
from lc2backup.domain.events import DocumentLibraryTransferStarted
from lc2backup.domain.liferay import generated_prefixes
from lc2backup.domain.state import TransferInfo
from lc2backup.providers.base import BackupJob, BranchCheck, Capabilities, TransferProgress, TransferStatus
from lc2backup.providers.errors import PermanentProviderError, ProviderNotConfigured
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.errors import GcpCall, api_status
from lc2backup.providers.gcp.names import description_of, transfer_job_name
from lc2backup.providers.gcp.settings import GcpSettings
from lc2backup.providers.gcp.storage import GcsBuckets

METHOD = "storage-transfer-service"
COUNTERS = frozenset({"objects_found", "objects_copied", "bytes_copied", "objects_excluded", "bytes_excluded"})
RUNNING = frozenset({"QUEUED", "IN_PROGRESS", "PAUSED", "SUSPENDING", "STATUS_UNSPECIFIED"})
EXCLUDE_MAX = 1000  # STS: at most 1000 exclude prefixes


def breakdown(operation: Any) -> str:
    """STS's error breakdown in one line: ``NOT_FOUND ×2 (gs://…: detail); …``."""
    from google.rpc import code_pb2

    parts = []
    for item in operation.error_breakdowns:
        code = code_pb2.Code.Name(int(item.error_code))  # google.rpc.Code: a plain protobuf enum, an int here
        entry = item.error_log_entries[0] if item.error_log_entries else None
        where = f" ({entry.url}: {'; '.join(entry.error_details)})" if entry else ""
        parts.append(f"{code} ×{item.error_count}{where}")
    return "; ".join(parts) or "no error breakdown given"


class StorageTransferProvider:
    name = "gcp"
    capabilities = Capabilities(counters=COUNTERS)  # a managed job, polled; it does not count vanished objects

    def __init__(self, clients: GcpClients, settings: GcpSettings) -> None:
        self._clients = clients
        self._settings = settings
        self._buckets = GcsBuckets(clients)

    def _call(self, permission: str, resource: str) -> GcpCall:
        return GcpCall(permission, resource, "", self._settings.transient_retry_seconds)

    async def _project(self) -> str:
        project = await self._clients.run(lambda: self._clients.project)
        if not project:
            raise ProviderNotConfigured(
                "the Storage Transfer job needs a project: set LC2_GCP__PROJECT in doclib-transfer"
            )
        return project

    async def start_transfer(self, job: BackupJob) -> DocumentLibraryTransferStarted:
        from google.cloud import storage_transfer as sts

        dl, layout = job.spec.document_library, job.layout
        for bucket, what, field in (
            (dl.source_bucket, "source bucket", "spec.documentLibrary.sourceBucket"),
            (dl.destination_bucket, "destination bucket", "spec.documentLibrary.destinationBucket"),
        ):
            await self._buckets.require(bucket, what, field)
        companies: list[str] = []
        if dl.exclude_generated_files:
            companies = await self._buckets.company_ids(dl.source_bucket, dl.source_prefix)
        excluded = generated_prefixes(dl.source_prefix, companies)
        if len(excluded) > EXCLUDE_MAX:
            raise PermanentProviderError(
                f"gs://{dl.source_bucket}/{dl.source_prefix} holds {len(companies)} companies: their generated"
                f" files need {len(excluded)} exclude prefixes, more than the {EXCLUDE_MAX} Storage Transfer accepts;"
                " back up with excludeGeneratedFiles: false"
            )
        project, name = await self._project(), transfer_job_name(job.backup_id)
        transfer_job = sts.TransferJob(
            name=name,
            description=description_of(job.backup_id),
            project_id=project,
            status=sts.TransferJob.Status.ENABLED,
            transfer_spec=sts.TransferSpec(
                gcs_data_source=sts.GcsData(bucket_name=dl.source_bucket, path=dl.source_prefix),
                gcs_data_sink=sts.GcsData(bucket_name=layout.bucket, path=layout.document_library_prefix),
                # relative to the source path: "If you specified a folder as your source location, prefix
                # filters are relative to that folder" (STS, filtering objects from transfers)
                object_conditions=sts.ObjectConditions(
                    exclude_prefixes=[p.removeprefix(dl.source_prefix) for p in excluded]
                ),
                transfer_options=sts.TransferOptions(overwrite_when=sts.TransferOptions.OverwriteWhen.NEVER),
            ),
        )
        call = self._call("storagetransfer.jobs.create", f"Storage Transfer job {name!r} in project {project!r}")
        try:
            await self._clients.run(lambda: self._clients.transfer.create_transfer_job({"transfer_job": transfer_job}))
        except Exception as exc:
            if api_status(exc) != "ALREADY_EXISTS":  # else created by an earlier delivery: the name is ours
                raise call.translate(exc) from exc
        return DocumentLibraryTransferStarted(
            exclude_generated_files=dl.exclude_generated_files,
            job_id=name,
            method=METHOD,
            source=f"gs://{dl.source_bucket}/{dl.source_prefix}",
            destination=layout.uri(layout.document_library_prefix),
            excluded_prefixes=excluded,
        )

    async def _operations(self, project: str, name: str) -> list[Any]:
        from google.cloud import storage_transfer as sts
        from google.longrunning import operations_pb2

        request = operations_pb2.ListOperationsRequest(
            name="transferOperations", filter=json.dumps({"projectId": project, "jobNames": [name]})
        )
        call = self._call("storagetransfer.operations.list", f"transfer operations of {name!r}")
        try:
            listed = await self._clients.run(lambda: self._clients.transfer.list_operations(request))
        except Exception as exc:
            raise call.translate(exc) from exc
        found = [sts.TransferOperation.deserialize(op.metadata.value) for op in listed.operations]
        return sorted(
            found, key=lambda op: op.start_time.timestamp() if op.start_time else float("inf")
        )  # queued: newest

    async def _ran(self, project: str, name: str) -> bool:
        """Whether the job has an operation, listed or not yet (``latestOperationName``): never run it twice."""
        call = self._call("storagetransfer.jobs.get", f"Storage Transfer job {name!r}")
        try:
            job = await self._clients.run(
                lambda: self._clients.transfer.get_transfer_job({"job_name": name, "project_id": project})
            )
        except Exception as exc:
            raise call.translate(exc) from exc
        return bool(job.latest_operation_name)

    async def _run(self, project: str, name: str) -> None:
        call = self._call("storagetransfer.jobs.run", f"Storage Transfer job {name!r}")
        try:
            await self._clients.run(
                lambda: self._clients.transfer.run_transfer_job({"job_name": name, "project_id": project})
            )
        except Exception as exc:
            if api_status(exc) != "FAILED_PRECONDITION":  # else an operation of the job is active: poll that one
                raise call.translate(exc) from exc

    async def check_transfer(
        self,
        job: BackupJob,
        transfer: TransferInfo,
        progress: TransferProgress,
        still_running: BranchCheck | None = None,
        *,
        resume: TransferStatus | None = None,
        slice_seconds: float = 30.0,
    ) -> TransferStatus:
        project = await self._project()
        operations = await self._operations(project, transfer.job_id)
        if not operations:
            if not await self._ran(project, transfer.job_id):
                await self._run(project, transfer.job_id)
            return TransferStatus(
                done=False, counters=TransferCounters.zero(COUNTERS - {"objects_excluded", "bytes_excluded"})
            )
        operation = operations[-1]  # the newest: one run per job unless STS itself retried
        counters = self._counters(operation)
        status = operation.status.name
        if status in RUNNING:
            return TransferStatus(done=False, counters=counters)
        if status != "SUCCESS":
            return TransferStatus(
                done=False,
                counters=counters,
                error=f"Storage Transfer operation {operation.name} ended {status}: {breakdown(operation)}",
            )
        failed = int(operation.counters.objects_from_source_failed)
        if failed:
            return TransferStatus(
                done=False,
                counters=counters,
                error=f"Storage Transfer operation {operation.name} could not copy {failed} objects: {breakdown(operation)}",
            )
        excluded, excluded_bytes = await self._buckets.count(
            job.spec.document_library.source_bucket, transfer.excluded_prefixes
        )
        return TransferStatus(
            done=True,
            counters=counters.model_copy(
                update={"objects_excluded": excluded, "bytes_excluded": excluded_bytes, "listing_complete": True}
            ),
        )

    @staticmethod
    def _counters(operation: Any) -> TransferCounters:
        c = operation.counters
        return TransferCounters(
            objects_found=int(c.objects_found_from_source),
            objects_copied=int(c.objects_copied_to_sink),
            bytes_copied=int(c.bytes_copied_to_sink),
        )


@contextlib.asynccontextmanager
async def open_transfer_provider(settings: GcpSettings) -> AsyncIterator[StorageTransferProvider]:
    yield StorageTransferProvider(GcpClients(settings), settings)
