"""The AWS database branch: an RDS/Aurora snapshot (the restorable artefact), then its Parquet export to S3.

Both steps are managed operations started under deterministic names and polled once per delivery by
db-export; no database byte passes through this process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo
from lc2backup.providers.aws.clients import RdsClient, rds_client
from lc2backup.providers.aws.exporting import RdsExports
from lc2backup.providers.aws.settings import AwsSettings
from lc2backup.providers.aws.snapshots import RdsSnapshots
from lc2backup.providers.base import (
    BackupJob,
    Capabilities,
    ExportProgress,
    ExportStatus,
    SnapshotStatus,
)
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.s3 import S3Client, s3_client


class AwsDatabaseProvider:
    name = "aws"
    capabilities = Capabilities(restorable=frozenset({"snapshot"}))  # managed operations, polled

    def __init__(self, rds: RdsClient, s3: S3Client, settings: AwsSettings) -> None:
        self._snapshots = RdsSnapshots(rds, settings)
        self._exports = RdsExports(rds, s3, self._snapshots, settings)

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        self._exports.require_configured(f"the database of backup {job.backup_id}")
        snapshot_id = await self._snapshots.start(job)
        return DatabaseSnapshotStarted(snapshot_id=snapshot_id, instance_id=job.spec.database.instance_id)

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        return await self._snapshots.check(snapshot.snapshot_id)

    async def start_export(self, job: BackupJob, snapshot: SnapshotInfo | None) -> DatabaseExportStarted:
        if snapshot is None:
            raise PermanentProviderError(
                "the aws provider backs up RDS with a snapshot (the restorable artefact) and exports that "
                "snapshot to S3; it cannot take a logical dump: use database.type: snapshot"
            )
        return await self._exports.start(job, snapshot.snapshot_id)

    async def check_export(self, job: BackupJob, ref: ExportInfo, progress: ExportProgress) -> ExportStatus:
        return await self._exports.check(ref)


@contextlib.asynccontextmanager
async def open_database_provider(settings: AwsSettings) -> AsyncIterator[AwsDatabaseProvider]:
    """The provider with its RDS client and the S3 client it checks the destination bucket with."""
    async with rds_client(settings) as rds, s3_client(settings.s3()) as s3:
        yield AwsDatabaseProvider(rds, s3, settings)
