"""The AWS document-library branch and metadata store: S3 server-side copies with the shared copier.

CopyObject up to the single-copy limit (5 GB), UploadPartCopy above it, pinned to the listed ETag; the
listing skips Liferay's generated files; a JSONL manifest is written next to the copy. Buckets are checked
first so a missing one fails the branch by name. For buckets with many millions of objects, S3 Batch
Operations or DataSync are the managed path (see docs/aws.md); this copier is the one the service runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from lc2backup.domain.events import DocumentLibraryTransferStarted
from lc2backup.domain.state import TransferInfo
from lc2backup.providers.aws.settings import AwsSettings
from lc2backup.providers.base import (
    COPIER_COUNTERS,
    ArtifactStore,
    BackupJob,
    BranchCheck,
    Capabilities,
    TransferProgress,
    TransferStatus,
)
from lc2backup.providers.buckets import require_bucket
from lc2backup.providers.copier import S3Copier
from lc2backup.providers.s3 import S3Client, s3_client
from lc2backup.providers.s3direct import DirectEndpoint, artifact_store

METHOD = "s3-copy-object"
GRANT = "the service's AWS role"


class AwsTransferProvider:
    name = "aws"
    capabilities = Capabilities(runs_here=True, counters=COPIER_COUNTERS)  # our copier, S3 copying server-side

    def __init__(self, client: S3Client, settings: AwsSettings) -> None:
        self._client = client
        self._region = settings.region
        self._copier = S3Copier(
            workers=settings.copy_workers,
            progress_interval=settings.progress_interval_seconds,
            cancel_check_interval=settings.cancel_check_interval_seconds,
            single_copy_limit=settings.single_copy_limit_bytes,
            multipart_part_size=settings.multipart_part_size_bytes,
            direct=DirectEndpoint.from_settings(settings.s3()) if settings.direct_copy else None,
        )

    async def start_transfer(self, job: BackupJob) -> DocumentLibraryTransferStarted:
        dl = job.spec.document_library
        for bucket, what, field in (
            (dl.source_bucket, "source bucket", "spec.documentLibrary.sourceBucket"),
            (dl.destination_bucket, "destination bucket", "spec.documentLibrary.destinationBucket"),
        ):
            await require_bucket(self._client, bucket, what, field, grant=GRANT, region=self._region)
        return DocumentLibraryTransferStarted(
            exclude_generated_files=job.spec.document_library.exclude_generated_files,
            job_id=f"aws-s3-copy-{job.backup_id}",
            method=METHOD,
            source=f"s3://{dl.source_bucket}/{dl.source_prefix}",
            destination=job.layout.uri(job.layout.document_library_prefix),
            excluded_prefixes=await self._copier.excluded_prefixes(self._client, job),
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
        return await self._copier.copy(
            self._client, job, progress, still_running, resume=resume, slice_seconds=slice_seconds
        )


@contextlib.asynccontextmanager
async def open_transfer_provider(settings: AwsSettings) -> AsyncIterator[AwsTransferProvider]:
    async with s3_client(settings.s3()) as client:
        yield AwsTransferProvider(client, settings)


@contextlib.asynccontextmanager
async def open_artifact_store(settings: AwsSettings) -> AsyncIterator[ArtifactStore]:
    """metadata.json on S3, create-only (``If-None-Match: *``), over the lean path (s3direct)."""
    async with artifact_store(settings.s3()) as store:
        yield store
