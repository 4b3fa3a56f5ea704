"""The RDS side of the aws provider against moto, through the fake stage: idempotent starts, statuses in
any case, progress and failure cause, Aurora clusters, and errors that name what to fix.

These call the provider the way db-export does, one step per call, with the real aioboto3 client; the
whole-system runs are in test_aws_backup.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lc2backup.domain import BackupLayout, parse_spec
from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo
from lc2backup.providers import (
    BackupJob,
    ExportStatus,
    PermanentProviderError,
    TransientProviderError,
)
from lc2backup.providers.aws import AwsDatabaseProvider, AwsSettings, export_identifier, open_database_provider
from tests.aws.stage import Stage
from tests.aws.support import (
    ACCESS_KEY_ID,
    EXPORT_KEY,
    EXPORT_ROLE,
    REGION,
    SECRET_ACCESS_KEY,
    aws_spec,
    exports_of,
    snapshots_of,
)

pytestmark = pytest.mark.aws


def _job(backup_id: str, instance: str, buckets: tuple[str, str], **database: Any) -> BackupJob:
    raw = aws_spec(instance, *buckets)
    raw["database"].update(database)
    spec = parse_spec(raw)
    return BackupJob(backup_id, spec, BackupLayout.of(spec, backup_id))


def _recorded(started: DatabaseExportStarted) -> ExportInfo:
    """What db-export polls: the export as the fold recorded it from its started event."""
    return ExportInfo.model_validate(started.model_dump())


def _taken(started: DatabaseSnapshotStarted) -> SnapshotInfo:
    """What db-export polls and exports from: the snapshot as the fold recorded it from its started event."""
    return SnapshotInfo(snapshot_id=started.snapshot_id)


async def _no_progress(_: ExportStatus) -> None:
    return None


@pytest.fixture
def settings(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> AwsSettings:
    # the provider reads credentials from the standard chain only: give it the environment
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return AwsSettings(
        region=REGION,
        rds_endpoint_url=stage.url,
        s3_endpoint_url=stage.url,
        export_iam_role_arn=EXPORT_ROLE,
        export_kms_key_id=EXPORT_KEY,
        max_attempts=2,
        transient_retry_seconds=0.5,
    )


@pytest.fixture
async def provider(settings: AwsSettings) -> AsyncIterator[AwsDatabaseProvider]:
    async with open_database_provider(settings) as opened:
        yield opened


async def test_a_repeated_start_finds_the_snapshot_and_export_it_already_started(
    provider: AwsDatabaseProvider, stage: Stage, rds: Any, instance: str, aws_buckets: tuple[str, str], unique: str
) -> None:
    job = _job(f"backup-{unique}", instance, aws_buckets)

    first = await provider.start_snapshot(job)
    again = await provider.start_snapshot(job)  # a redelivery before the Started event was recorded
    assert first == again
    assert stage.count("CreateDBSnapshot") == 2
    snaps = await snapshots_of(rds, instance)
    assert [s["DBSnapshotIdentifier"] for s in snaps] == [first.snapshot_id]
    tags = {t["Key"]: t["Value"] for t in snaps[0].get("TagList", [])}
    assert tags == {"lc2-backup-id": job.backup_id, "lc2-project": "retail", "lc2-environment": "prd"}

    status = await provider.check_snapshot(job, _taken(first))
    assert status.done and status.location == snaps[0]["DBSnapshotArn"]
    assert (status.engine, status.engine_version) == ("postgres", "16.3")

    ref = await provider.start_export(job, _taken(first))
    assert ref == await provider.start_export(job, _taken(first))
    assert stage.count("StartExportTask") == 2
    assert (ref.operation_id, ref.format, ref.restorable) == (export_identifier(job.backup_id), "parquet", False)
    assert ref.location == f"s3://{aws_buckets[1]}/backups/{job.backup_id}/database/{ref.operation_id}/"
    tasks = await exports_of(rds, {status.location or ""})
    assert len(tasks) == 1
    task = tasks[0]
    assert (task["S3Bucket"], task["S3Prefix"]) == (aws_buckets[1], f"backups/{job.backup_id}/database")
    assert (task["IamRoleArn"], task["KmsKeyId"], task["ExportOnly"]) == (EXPORT_ROLE, EXPORT_KEY, ["lportal"])


async def test_statuses_are_read_in_any_case_with_progress_size_and_failure_cause(
    provider: AwsDatabaseProvider, stage: Stage, instance: str, aws_buckets: tuple[str, str], unique: str
) -> None:
    job = _job(f"backup-{unique}", instance, aws_buckets)
    stage.set_fields("DescribeDBSnapshots", {"Status": "creating", "PercentProgress": "12"})
    snap = await provider.start_snapshot(job)
    creating = await provider.check_snapshot(job, _taken(snap))
    assert (creating.done, creating.percent, creating.error) == (False, 12, None)
    stage.set_fields("DescribeDBSnapshots", {"Status": "AVAILABLE"})
    assert (await provider.check_snapshot(job, _taken(snap))).done
    stage.set_fields("DescribeDBSnapshots", {"Status": "failed"})
    failed = await provider.check_snapshot(job, _taken(snap))
    assert not failed.done and failed.error == "RDS reports the snapshot failed"
    stage.set_fields("DescribeDBSnapshots", None)

    ref = _recorded(await provider.start_export(job, _taken(snap)))
    assert (await provider.check_export(job, ref, _no_progress)).done  # moto's lowercase "complete"
    stage.set_fields("DescribeExportTasks", {"Status": "STARTING"})
    assert not (await provider.check_export(job, ref, _no_progress)).done
    stage.set_fields("DescribeExportTasks", {"Status": "IN_PROGRESS", "PercentProgress": "40"})
    running = await provider.check_export(job, ref, _no_progress)
    assert (running.done, running.percent, running.error) == (False, 40, None)
    stage.set_fields("DescribeExportTasks", {"Status": "COMPLETE", "TotalExtractedDataInGB": "7"})
    done = await provider.check_export(job, ref, _no_progress)
    assert (done.done, done.extracted_gb, done.percent) == (True, 7.0, 100)
    cause = "The IAM role arn:aws:iam::123456789012:role/lc2-rds-export cannot write to the bucket"
    stage.set_fields("DescribeExportTasks", {"Status": "FAILED", "FailureCause": cause})
    failed_export = await provider.check_export(job, ref, _no_progress)
    assert not failed_export.done and failed_export.error == f"RDS reports the export FAILED: {cause}"
    stage.set_fields("DescribeExportTasks", {"Status": "CANCELED"})
    assert "CANCELED" in ((await provider.check_export(job, ref, _no_progress)).error or "")


async def test_an_aurora_cluster_is_snapshotted_and_exported_as_a_cluster(
    provider: AwsDatabaseProvider, rds: Any, aws_buckets: tuple[str, str], unique: str
) -> None:
    cluster = f"aurora-{unique}"
    await rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-postgresql",
        MasterUsername="liferay",
        MasterUserPassword="not-used-by-the-backup",
    )
    job = _job(f"backup-{unique}", cluster, aws_buckets)
    snap = await provider.start_snapshot(job)
    assert snap.snapshot_id.endswith("-cluster-snapshot")
    assert snap == await provider.start_snapshot(job)
    found = await rds.describe_db_cluster_snapshots(DBClusterIdentifier=cluster, SnapshotType="manual")
    assert [s["DBClusterSnapshotIdentifier"] for s in found["DBClusterSnapshots"]] == [snap.snapshot_id]
    status = await provider.check_snapshot(job, _taken(snap))
    assert status.done and ":cluster-snapshot:" in (status.location or "")
    ref = _recorded(await provider.start_export(job, _taken(snap)))
    assert len(await exports_of(rds, {status.location or ""})) == 1
    assert (await provider.check_export(job, ref, _no_progress)).done


async def test_throttling_is_transient_and_retried_by_botocore_first(
    provider: AwsDatabaseProvider, stage: Stage, rds: Any, instance: str, aws_buckets: tuple[str, str], unique: str
) -> None:
    job = _job(f"backup-{unique}", instance, aws_buckets)
    stage.fail("CreateDBSnapshot", times=1, code="Throttling")
    snap = await provider.start_snapshot(job)  # botocore's own retry absorbs one throttle
    assert stage.injected["CreateDBSnapshot"] == 1 and stage.count("CreateDBSnapshot") == 2

    stage.fail("DescribeDBSnapshots", times=3, code="ThrottlingException")  # the first attempt and both retries
    with pytest.raises(TransientProviderError) as caught:
        await provider.check_snapshot(job, _taken(snap))
    assert caught.value.retry_after == 0.5 and "will retry" in str(caught.value)
    assert (await provider.check_snapshot(job, _taken(snap))).done  # the durable retry, later
    assert len(await snapshots_of(rds, instance)) == 1


async def test_errors_name_the_resource_and_the_fix(
    provider: AwsDatabaseProvider,
    settings: AwsSettings,
    stage: Stage,
    rds: Any,
    instance: str,
    aws_buckets: tuple[str, str],
    unique: str,
) -> None:
    missing = _job(f"backup-{unique}", f"no-such-db-{unique}", aws_buckets)
    with pytest.raises(PermanentProviderError, match=rf"Aurora cluster 'no-such-db-{unique}' not found in region"):
        await provider.start_snapshot(missing)

    elsewhere = _job(f"backup-{unique}", f"arn:aws:rds:eu-west-1:123456789012:db:{instance}", aws_buckets)
    with pytest.raises(PermanentProviderError, match="is in region eu-west-1 but the aws provider runs in us-east-1"):
        await provider.start_snapshot(elsewhere)

    job = _job(f"backup-{unique}", instance, aws_buckets)
    stage.fail("CreateDBSnapshot", times=1, code="AccessDenied", status=403, message="not authorized")
    with pytest.raises(
        PermanentProviderError, match=rf"access denied to RDS instance '{instance}'.*rds:CreateDBSnapshot"
    ):
        await provider.start_snapshot(job)

    snap = await provider.start_snapshot(job)
    no_bucket = _job(f"backup-{unique}", instance, (aws_buckets[0], f"gone-{unique}"))
    with pytest.raises(PermanentProviderError, match=rf"destination bucket gone-{unique} does not exist"):
        await provider.start_export(no_bucket, _taken(snap))

    stage.fail("StartExportTask", times=1, code="IamRoleNotFound", status=404)
    with pytest.raises(PermanentProviderError, match=rf"export role {EXPORT_ROLE} not found"):
        await provider.start_export(job, _taken(snap))

    with pytest.raises(PermanentProviderError, match="use database.type: snapshot"):
        await provider.start_export(job, None)

    unconfigured = settings.model_copy(update={"export_iam_role_arn": None})
    async with open_database_provider(unconfigured) as bare:
        with pytest.raises(PermanentProviderError, match="LC2_AWS__EXPORT_IAM_ROLE_ARN"):
            await bare.start_snapshot(_job(f"other-{unique}", instance, aws_buckets))  # before any snapshot
        with pytest.raises(PermanentProviderError, match="LC2_AWS__EXPORT_IAM_ROLE_ARN"):
            await bare.start_export(job, _taken(snap))
    assert len(await snapshots_of(rds, instance)) == 1
