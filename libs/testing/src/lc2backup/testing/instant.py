"""A provider whose operations complete at once and move nothing: for benchmarks and flood tests only.

It measures (and exercises) the orchestration itself — intake, admission, both branches, metadata, the
projection — without the cost of dumps and copies. Enabled only by ``LC2_LOCAL__MODE=instant``, which
db-export and doclib-transfer find through this package's entry points (``lc2backup.providers.plugins``); the
image does not install this package. The metadata.json is still written to the real store, so a backup
still ends with its one artefact.
"""

from __future__ import annotations

import hashlib

from lc2backup.domain import TransferCounters
from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted, DocumentLibraryTransferStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo, TransferInfo
from lc2backup.providers.base import (
    BackupJob,
    BranchCheck,
    Capabilities,
    ExportProgress,
    ExportStatus,
    SnapshotStatus,
    TransferProgress,
    TransferStatus,
)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class InstantDatabaseProvider:
    name = "instant"
    capabilities = Capabilities()

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        return DatabaseSnapshotStarted(
            snapshot_id=f"instant-{job.backup_id}", instance_id=job.spec.database.instance_id
        )

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        return SnapshotStatus(done=True, size_bytes=0, engine="instant", engine_version="0")

    async def start_export(self, job: BackupJob, snapshot: SnapshotInfo | None) -> DatabaseExportStarted:
        key = job.layout.database_key(job.spec.database.database_name or "database", "instant")
        return DatabaseExportStarted(operation_id=key, location=job.layout.uri(key), format="instant", restorable=False)

    async def check_export(self, job: BackupJob, ref: ExportInfo, progress: ExportProgress) -> ExportStatus:
        return ExportStatus(done=True, size_bytes=0, sha256=EMPTY_SHA256, engine="instant", engine_version="0")


class InstantTransferProvider:
    name = "instant"
    capabilities = Capabilities()

    async def start_transfer(self, job: BackupJob) -> DocumentLibraryTransferStarted:
        dl = job.spec.document_library
        return DocumentLibraryTransferStarted(
            exclude_generated_files=job.spec.document_library.exclude_generated_files,
            job_id=f"instant-{job.backup_id}",
            method="instant",
            source=f"s3://{dl.source_bucket}/{dl.source_prefix}",
            destination=job.layout.uri(job.layout.document_library_prefix),
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
        return TransferStatus(done=True, counters=TransferCounters(listing_complete=True))
