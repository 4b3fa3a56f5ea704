"""The RDS export of a snapshot to S3: ``start_export_task`` under a deterministic name, then one
``describe_export_tasks`` per poll.

The export is Apache Parquet for analytics (Athena, Redshift Spectrum), not a restorable dump: events and
metadata.json carry ``format: parquet`` and ``restorable: false``, and the snapshot is what a restore uses.
RDS writes it to ``s3://<bucket>/<backup root>database/<export id>/``; ``databaseName`` narrows it with
``ExportOnly``. botocore has no waiter for exports: the durable poll of db-export is the waiter.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from lc2backup.domain.events import DatabaseExportStarted
from lc2backup.domain.state import ExportInfo
from lc2backup.providers.aws.clients import RdsClient
from lc2backup.providers.aws.errors import RdsCall, rds_code
from lc2backup.providers.aws.identifiers import export_identifier
from lc2backup.providers.aws.settings import AwsSettings
from lc2backup.providers.aws.snapshots import RdsSnapshots
from lc2backup.providers.base import BackupJob, ExportStatus
from lc2backup.providers.buckets import require_bucket
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.s3 import S3Client

log = logging.getLogger(__name__)

FORMAT = "parquet"
RESTORABLE = False
ENDED = frozenset({"failed", "canceled", "cancelled"})  # besides "complete"


class RdsExports:
    def __init__(self, rds: RdsClient, s3: S3Client, snapshots: RdsSnapshots, settings: AwsSettings) -> None:
        self._rds = rds
        self._s3 = s3
        self._snapshots = snapshots
        self._settings = settings

    def _call(self, action: str, resource: str, bucket: str | None = None) -> RdsCall:
        s = self._settings
        return RdsCall(
            action,
            resource,
            s.region,
            retry_after=s.transient_retry_seconds,
            role_arn=s.export_iam_role_arn,
            kms_key_id=s.export_kms_key_id,
            bucket=bucket,
        )

    def require_configured(self, what: str) -> None:
        """RDS requires a role and a key for every export: refuse early rather than after a snapshot."""
        s = self._settings
        if not s.export_iam_role_arn or not s.export_kms_key_id:
            raise PermanentProviderError(
                f"cannot export {what}: set LC2_AWS__EXPORT_IAM_ROLE_ARN and LC2_AWS__EXPORT_KMS_KEY_ID in "
                "db-export (RDS requires both for an export to S3)"
            )

    async def start(self, job: BackupJob, snapshot_id: str) -> DatabaseExportStarted:
        s, layout = self._settings, job.layout
        self.require_configured(f"snapshot {snapshot_id}")
        await require_bucket(
            self._s3,
            layout.bucket,
            "destination bucket",
            "spec.documentLibrary.destinationBucket",
            grant="the service's AWS role",
            region=s.region,
        )
        export_id = export_identifier(job.backup_id)
        request: dict[str, Any] = {
            "ExportTaskIdentifier": export_id,
            "SourceArn": await self._snapshots.arn(snapshot_id),
            "S3BucketName": layout.bucket,
            "S3Prefix": layout.database_prefix.rstrip("/"),
            "IamRoleArn": s.export_iam_role_arn,
            "KmsKeyId": s.export_kms_key_id,
        }
        if job.spec.database.database_name:
            request["ExportOnly"] = [job.spec.database.database_name]
        call = self._call("StartExportTask", f"snapshot {snapshot_id}", layout.bucket)
        try:
            await self._rds.start_export_task(**request)
        except ClientError as exc:
            if rds_code(exc) != "ExportTaskAlreadyExists":
                raise call.translate(exc) from exc
            task = await self.describe(export_id)  # started by an earlier delivery: it must be ours
            if task.get("SourceArn") not in (None, request["SourceArn"]):
                raise PermanentProviderError(
                    f"export task {export_id} already exists for {task.get('SourceArn')}, not {request['SourceArn']}"
                ) from exc
        except Exception as exc:
            raise call.translate(exc) from exc
        location = layout.uri(f"{layout.database_prefix}{export_id}/")
        return DatabaseExportStarted(operation_id=export_id, location=location, format=FORMAT, restorable=RESTORABLE)

    async def describe(self, export_id: str) -> dict[str, Any]:
        call = self._call("DescribeExportTasks", f"export task {export_id}")
        try:
            resp = await self._rds.describe_export_tasks(ExportTaskIdentifier=export_id)
        except Exception as exc:
            raise call.translate(exc) from exc
        tasks = resp.get("ExportTasks", [])
        if not tasks:
            raise PermanentProviderError(f"export task {export_id} not found in region {self._settings.region}")
        task: dict[str, Any] = tasks[0]
        return task

    async def check(self, ref: ExportInfo) -> ExportStatus:
        task = await self.describe(ref.operation_id)
        status = str(task.get("Status", "")).lower()
        percent = _int(task.get("PercentProgress"))
        if status == "complete":
            if task.get("WarningMessage"):
                log.warning("export %s completed with a warning: %s", ref.operation_id, task["WarningMessage"])
            extracted = task.get("TotalExtractedDataInGB")
            return ExportStatus(
                done=True, percent=100, extracted_gb=float(extracted) if extracted is not None else None
            )
        if status in ENDED:
            cause = task.get("FailureCause") or "RDS gave no FailureCause"
            return ExportStatus(done=False, percent=percent, error=f"RDS reports the export {status.upper()}: {cause}")
        return ExportStatus(done=False, percent=percent)  # starting, in_progress, canceling (or a new state)


def _int(value: Any) -> int | None:
    return max(0, min(100, int(value))) if value is not None else None
