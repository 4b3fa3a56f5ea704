"""The local provider (dev, k3d, CI): pg_dump into an S3-compatible store and S3 server-side copies.

It is the only provider that moves bytes itself (the dump), always with memory bounded by a part size.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted, DocumentLibraryTransferStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo, TransferInfo
from lc2backup.providers.base import (
    COPIER_COUNTERS,
    BackupJob,
    BranchCheck,
    Capabilities,
    ExportProgress,
    ExportStatus,
    SnapshotStatus,
    TransferProgress,
    TransferStatus,
)
from lc2backup.providers.buckets import require_bucket
from lc2backup.providers.copier import S3Copier
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.local.dumping import EXTENSION, FORMAT, DumpTarget, PgDumper
from lc2backup.providers.s3 import MIB, S3ArtifactStore, S3Client, S3Settings
from lc2backup.providers.s3direct import DirectEndpoint, local_artifact_store

GRANT = "the LC2_S3__ACCESS_KEY_ID identity"
DESTINATION = ("destination bucket", "spec.documentLibrary.destinationBucket")


class LocalSettings(BaseModel):
    """``databases`` maps a BackupRequest's ``database.instanceId`` to a DSN; the DSN never leaves this process."""

    databases: dict[str, SecretStr] = Field(default_factory=dict)
    mode: str = Field(
        default="real",
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="real, or a provider another installed package registers (lc2backup.providers.plugins): the"
        " test-only lc2backup-testing registers instant (operations complete at once, nothing moves: benchmarks,"
        " flood tests)",
    )
    pg_dump: str = "pg_dump"
    pg_restore: str = "pg_restore"
    compress: int = Field(default=1, ge=0, le=9)
    part_size_mib: int = Field(default=8, ge=5, le=512)
    copy_workers: int = Field(default=64, ge=1, le=512)
    direct_copy: bool = Field(
        default=True,
        description="list and CopyObject over aiohttp, signed by botocore's SigV4 (s3direct), instead of botocore's"
        " client",
    )
    progress_interval_seconds: float = 2.0
    cancel_check_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often a running copy checks that its branch was not cancelled"
    )
    single_copy_limit_bytes: int = 5 * 1024 * MIB
    multipart_part_size_bytes: int = 512 * MIB


class LocalDatabaseProvider:
    name = "local"
    capabilities = Capabilities(moves_bytes=True, runs_here=True, restorable=frozenset({"export"}))

    def __init__(self, client: S3Client, settings: LocalSettings) -> None:
        self._client = client
        self._settings = settings
        self._dumper = PgDumper(
            pg_dump=settings.pg_dump,
            compress=settings.compress,
            part_size=settings.part_size_mib * MIB,
            progress_interval=settings.progress_interval_seconds,
        )

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        raise PermanentProviderError("the local provider has no managed snapshots: use database.type: dump")

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        raise PermanentProviderError("the local provider has no managed snapshots")

    def _target(self, job: BackupJob) -> DumpTarget:
        db = job.spec.database
        dsn = self._settings.databases.get(db.instance_id)
        if dsn is None:
            known = ", ".join(sorted(self._settings.databases)) or "none"
            raise PermanentProviderError(
                f"database instance {db.instance_id!r} is not configured for the local provider "
                f"(configured: {known}; set LC2_LOCAL__DATABASES)"
            )
        return DumpTarget.parse(dsn.get_secret_value(), db.database_name)

    async def start_export(self, job: BackupJob, snapshot: SnapshotInfo | None) -> DatabaseExportStarted:
        target = self._target(job)
        await require_bucket(self._client, job.layout.bucket, *DESTINATION, grant=GRANT)
        key = job.layout.database_key(target.database, EXTENSION)
        return DatabaseExportStarted(operation_id=key, location=job.layout.uri(key), format=FORMAT, restorable=True)

    async def check_export(self, job: BackupJob, ref: ExportInfo, progress: ExportProgress) -> ExportStatus:
        return await self._dumper.dump(self._client, job, ref, self._target(job), progress)


class LocalTransferProvider:
    name = "local"
    capabilities = Capabilities(runs_here=True, counters=COPIER_COUNTERS)

    def __init__(self, client: S3Client, settings: LocalSettings, s3: S3Settings | None = None) -> None:
        """``s3``: the endpoint ``client`` talks to; the lean copy path (``direct_copy``) sends its requests there."""
        self._client = client
        self._copier = S3Copier(
            workers=settings.copy_workers,
            progress_interval=settings.progress_interval_seconds,
            cancel_check_interval=settings.cancel_check_interval_seconds,
            single_copy_limit=settings.single_copy_limit_bytes,
            multipart_part_size=settings.multipart_part_size_bytes,
            direct=DirectEndpoint.from_settings(s3) if s3 is not None and settings.direct_copy else None,
        )

    async def start_transfer(self, job: BackupJob) -> DocumentLibraryTransferStarted:
        dl = job.spec.document_library
        await require_bucket(
            self._client, dl.source_bucket, "source bucket", "spec.documentLibrary.sourceBucket", grant=GRANT
        )
        await require_bucket(self._client, dl.destination_bucket, *DESTINATION, grant=GRANT)
        return DocumentLibraryTransferStarted(
            exclude_generated_files=job.spec.document_library.exclude_generated_files,
            job_id=f"local-copy-{job.backup_id}",
            method="s3-copy-object",
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


__all__ = [
    "FORMAT",
    "LocalDatabaseProvider",
    "LocalSettings",
    "LocalTransferProvider",
    "S3ArtifactStore",
    "local_artifact_store",
]
