"""The GCP document-library branch: one Storage Transfer Service job per backup, GCS to GCS, run once.

The job's name derives from the backup id (``transferJobs/lc2-<backup id>``), so creating it again answers
ALREADY_EXISTS and is taken as done. It copies ``gs://<source>/<sourcePrefix>`` to the backup's
``documentlibrary/`` folder with ``overwriteWhen: NEVER`` (nothing already in the sink is written again)
and, for ``excludeGeneratedFiles``, ``objectConditions.excludePrefixes``: the literal Liferay prefixes per company
id (``<cid>/0/document_thumbnail/``, ``document_preview/``, ``adaptive/``, also under the store areas), the ids
found by a delimiter listing. STS takes no globs: the original design's ``**.thumbnail.**`` would match nothing.

Each poll reads the job's transfer operation, running the job once if it never ran (``transferjobs``): its
counters are the progress; SUCCESS completes the branch, FAILED or ABORTED fails it with STS's error
breakdown. STS does not count what the exclude prefixes left out, so on success those prefixes are listed
(metadata only) and ``metadata.json`` still says how many generated files were skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from lc2backup.domain import TransferCounters
from lc2backup.domain.events import DocumentLibraryTransferStarted
from lc2backup.domain.liferay import generated_prefixes
from lc2backup.domain.state import TransferInfo
from lc2backup.providers.base import BackupJob, BranchCheck, Capabilities, TransferProgress, TransferStatus
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.names import description_of, transfer_job_name
from lc2backup.providers.gcp.settings import GcpSettings
from lc2backup.providers.gcp.storage import GcsBuckets
from lc2backup.providers.gcp.transferjobs import RUNNING, GcsPath, TransferJobs, failure

METHOD = "storage-transfer-service"
COUNTERS = frozenset({"objects_found", "objects_copied", "bytes_copied", "objects_excluded", "bytes_excluded"})
EXCLUDE_MAX = 1000  # STS: at most 1000 exclude prefixes
SERVICE = "doclib-transfer"


class StorageTransferProvider:
    name = "gcp"
    capabilities = Capabilities(counters=COUNTERS)  # a managed job, polled; it does not count vanished objects

    def __init__(self, clients: GcpClients, settings: GcpSettings) -> None:
        self._clients = clients
        self._settings = settings
        self._buckets = GcsBuckets(clients)
        self._jobs = TransferJobs(clients)

    async def start_transfer(self, job: BackupJob) -> DocumentLibraryTransferStarted:
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
        project, name = await self._jobs.project(SERVICE), transfer_job_name(job.backup_id)
        await self._jobs.create(
            project,
            name,
            description_of(job.backup_id),
            GcsPath(dl.source_bucket, dl.source_prefix),
            GcsPath(layout.bucket, layout.document_library_prefix),
            exclude_prefixes=[p.removeprefix(dl.source_prefix) for p in excluded],
            overwrite_when="NEVER",  # a retried operation rewrites nothing already copied
        )
        return DocumentLibraryTransferStarted(
            exclude_generated_files=dl.exclude_generated_files,
            job_id=name,
            method=METHOD,
            source=f"gs://{dl.source_bucket}/{dl.source_prefix}",
            destination=layout.uri(layout.document_library_prefix),
            excluded_prefixes=excluded,
        )

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
        operation = await self._jobs.newest(await self._jobs.project(SERVICE), transfer.job_id)
        if operation is None:
            return TransferStatus(
                done=False, counters=TransferCounters.zero(COUNTERS - {"objects_excluded", "bytes_excluded"})
            )
        counters = self._counters(operation)
        if operation.status.name in RUNNING:
            return TransferStatus(done=False, counters=counters)
        error = failure(operation)
        if error is not None:
            return TransferStatus(done=False, counters=counters, error=error)
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
