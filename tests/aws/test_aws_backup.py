"""Whole backups on the aws provider: the five services as real processes, moto behind a fake stage.

What is checked is what a user relies on: the backup ends Succeeded (or Failed with a reason naming what
to fix), RDS holds exactly one snapshot and one export per backup however often a step is redelivered
or a service is killed, every copied object matches its source, and no credential shows anywhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.providers.aws import export_identifier, snapshot_identifier
from tests.aws.stage import Stage
from tests.aws.support import (
    ACCESS_KEY_ID,
    EXPORT_KEY,
    EXPORT_ROLE,
    MIB,
    SECRET_ACCESS_KEY,
    aws_spec,
    events_of,
    exports_of,
    listing,
    request_backup,
    snapshots_of,
    upload_multipart,
    wait_until,
)
from tests.metadata_json import read_metadata_json
from tests.support import System

pytestmark = [pytest.mark.aws, pytest.mark.e2e]

LARGE = 12 * MIB  # above the tests' 6 MiB single-copy limit: three 5 MiB UploadPartCopy parts


async def _read(s3: Any, bucket: str, uri: str) -> bytes:
    obj = await s3.get_object(Bucket=bucket, Key=uri.removeprefix(f"s3://{bucket}/"))
    async with obj["Body"] as stream:
        return bytes(await stream.read())


async def test_backup_snapshots_exports_and_copies_server_side(
    system: System, stage: Stage, rds: Any, aws_s3: Any, instance: str, aws_buckets: tuple[str, str]
) -> None:
    source, destination = aws_buckets
    layout = await seed_document_library(aws_s3, source, "dl/", plan_document_library(60))
    large = [f"20101/30001/9000{i}/1.0" for i in range(2)]
    for key in large:
        await upload_multipart(aws_s3, source, f"dl/{key}", LARGE)
    regular = {*layout.regular, *large}

    backup_id = await request_backup(system, aws_spec(instance, source, destination))
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)

    # RDS: one snapshot of the instance, one Parquet export of that snapshot into the backup's folder.
    (snapshot,) = await snapshots_of(rds, instance)
    assert snapshot["DBSnapshotIdentifier"] == snapshot_identifier(backup_id, "instance")
    (task,) = await exports_of(rds, {snapshot["DBSnapshotArn"]})
    export_id = export_identifier(backup_id)
    assert task["ExportTaskIdentifier"] == export_id
    assert (task["S3Bucket"], task["S3Prefix"]) == (destination, f"backups/{backup_id}/database")
    assert (task["IamRoleArn"], task["KmsKeyId"]) == (EXPORT_ROLE, EXPORT_KEY)

    # The events say what was made and that the export is not what a restore uses.
    events = await system.events(backup_id)
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["DatabaseSnapshotStarted"] == {
        "snapshotId": snapshot["DBSnapshotIdentifier"],
        "instanceId": instance,
        "operation": None,  # the snapshot can be read (described) as soon as it is created: nothing else to poll
    }
    assert by_type["DatabaseSnapshotCompleted"]["location"] == snapshot["DBSnapshotArn"]
    assert by_type["DatabaseSnapshotCompleted"]["engine"] == "postgres"
    export_uri = f"s3://{destination}/backups/{backup_id}/database/{export_id}/"
    assert by_type["DatabaseExportStarted"] == {
        "operationId": export_id,
        "location": export_uri,
        "format": "parquet",
        "restorable": False,
        "operation": None,  # the export task is described by its identifier: nothing else to poll
    }
    assert (by_type["DatabaseExportCompleted"]["format"], by_type["DatabaseExportCompleted"]["restorable"]) == (
        "parquet",
        False,
    )
    started = by_type["DocumentLibraryTransferStarted"]
    assert started["method"] == "s3-copy-object" and "dl/20101/0/document_thumbnail/" in started["excludedPrefixes"]
    assert [e["type"] for e in events].count("BackupSucceeded") == 1

    # Every regular object is in the backup with its source's size and ETag; generated files are not.
    copied = await listing(aws_s3, destination, f"backups/{backup_id}/documentlibrary/")
    originals = await listing(aws_s3, source, "dl/")
    assert set(copied) == regular
    assert all(copied[key] == originals[key] for key in regular)
    assert all(copied[key][1].endswith('-3"') for key in large)  # same parts, same multipart ETag
    # Large objects took the multipart path (3 parts each), the rest one CopyObject each.
    assert stage.count("UploadPartCopy") == 3 * len(large)
    assert stage.count("CopyObject") == len(layout.regular)
    counters = by_type["DocumentLibraryTransferCompleted"]["counters"]
    assert (counters["objectsCopied"], counters["objectsExcluded"]) == (len(regular), len(layout.generated))
    assert counters["bytesCopied"] == sum(size for size, _ in copied.values())

    manifest = _lines(await _read(aws_s3, destination, by_type["DocumentLibraryTransferCompleted"]["manifestLocation"]))
    assert {m["key"]: (m["size"], f'"{m["etag"]}"') for m in manifest} == copied

    # metadata.json, written once on S3, describes the restorable snapshot and the analytics export.
    meta = read_metadata_json(await _read(aws_s3, destination, doc["metadataLocation"]))
    assert (meta["backupId"], meta["provider"]) == (backup_id, "aws")
    assert meta["database"]["snapshot"]["location"] == snapshot["DBSnapshotArn"]
    assert meta["database"]["export"]["format"] == "parquet" and meta["database"]["export"]["restorable"] is False
    assert meta["database"]["export"]["location"] == export_uri
    assert meta["documentLibrary"]["objectsExcluded"] == len(layout.generated)

    # No credential anywhere: events, the projection, metadata.json, the services' logs.
    shown = json.dumps(events) + json.dumps(doc) + json.dumps(meta) + system.logs()
    assert ACCESS_KEY_ID not in shown and SECRET_ACCESS_KEY not in shown
    for log in system.log_dir.glob("*.log"):
        text = log.read_text()
        assert ACCESS_KEY_ID not in text and SECRET_ACCESS_KEY not in text


def _lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines() if line]


async def test_an_export_in_flight_survives_a_sigkill_of_db_export(
    system: System, stage: Stage, rds: Any, aws_s3: Any, instance: str, aws_buckets: tuple[str, str]
) -> None:
    source, destination = aws_buckets
    await seed_document_library(aws_s3, source, "dl/", plan_document_library(10))
    stage.set_fields("DescribeDBSnapshots", {"Status": "creating", "PercentProgress": "50"})
    stage.set_fields("DescribeExportTasks", {"Status": "IN_PROGRESS", "PercentProgress": "37"})
    backup_id = await request_backup(system, aws_spec(instance, source, destination))

    async def snapshot_polled() -> bool:
        return stage.count("DescribeDBSnapshots") >= 2 and bool(
            await events_of(system, backup_id, "DatabaseSnapshotStarted")
        )

    await wait_until("the snapshot is polled while creating", snapshot_polled, system)
    assert not await events_of(system, backup_id, "DatabaseSnapshotCompleted")
    stage.set_fields("DescribeDBSnapshots", None)  # moto's own answer: available

    async def export_progressed() -> bool:
        progressed = await events_of(system, backup_id, "DatabaseExportProgressed")
        return any(p["percent"] == 37 for p in progressed)

    await wait_until("the export reports 37 %", export_progressed, system)
    assert system.services is not None
    system.services["db-export"].kill()
    polls = stage.count("DescribeExportTasks")
    doc = await system.get(backup_id)
    assert doc is not None and doc["status"]["database"]["state"] == "ExportInProgress"

    system.services.restart("db-export")

    async def resumed() -> bool:
        return stage.count("DescribeExportTasks") > polls

    await wait_until("the restarted db-export polls the export again", resumed, system)
    stage.set_fields(
        "DescribeExportTasks", {"Status": "COMPLETE", "PercentProgress": "100", "TotalExtractedDataInGB": "3"}
    )
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)

    (snapshot,) = await snapshots_of(rds, instance)
    assert len(await exports_of(rds, {snapshot["DBSnapshotArn"]})) == 1
    assert (stage.count("CreateDBSnapshot"), stage.count("StartExportTask")) == (1, 1)
    assert len(await events_of(system, backup_id, "DatabaseExportStarted")) == 1
    (completed,) = await events_of(system, backup_id, "DatabaseExportCompleted")
    assert completed["extractedGb"] == 3.0
    meta = read_metadata_json(await _read(aws_s3, destination, doc["metadataLocation"]))
    assert meta["database"]["export"]["extractedGb"] == 3.0


async def test_a_crash_between_a_cloud_call_and_its_event_starts_nothing_twice(
    system: System, stage: Stage, rds: Any, instance: str, aws_buckets: tuple[str, str]
) -> None:
    source, destination = aws_buckets
    # moto acts on the call, but db-export never hears back: it is killed while it waits
    stage.stall("CreateDBSnapshot")
    stage.stall("StartExportTask")
    backup_id = await request_backup(system, aws_spec(instance, source, destination))
    assert system.services is not None

    for operation in ("CreateDBSnapshot", "StartExportTask"):

        async def stalled(op: str = operation) -> bool:
            return stage.stalled(op) == 1

        await wait_until(f"{operation} reached moto and its answer is held", stalled, system)
        system.services["db-export"].kill()
        system.services.restart("db-export")

    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    # each call was made twice (before and after the crash) and found what the first one started
    assert (stage.count("CreateDBSnapshot"), stage.count("StartExportTask")) == (2, 2)
    (snapshot,) = await snapshots_of(rds, instance)
    assert len(await exports_of(rds, {snapshot["DBSnapshotArn"]})) == 1
    for event_type in ("DatabaseSnapshotStarted", "DatabaseExportStarted"):
        assert len(await events_of(system, backup_id, event_type)) == 1


async def test_throttling_is_retried_and_never_fails_the_backup(
    system: System, stage: Stage, aws_s3: Any, instance: str, aws_buckets: tuple[str, str]
) -> None:
    source, destination = aws_buckets
    layout = await seed_document_library(aws_s3, source, "dl/", plan_document_library(20))
    # more throttles than botocore's retries (3 attempts per call here): the durable retry takes over
    faults = {
        "CreateDBSnapshot": (4, "Throttling", 400),
        "DescribeExportTasks": (3, "ThrottlingException", 400),
        "ListObjectsV2": (3, "SlowDown", 503),
        "CopyObject": (5, "SlowDown", 503),
        "PutObject": (1, "SlowDown", 503),
    }
    for operation, (times, code, status) in faults.items():
        stage.fail(operation, times=times, code=code, status=status)

    backup_id = await request_backup(system, aws_spec(instance, source, destination))
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    assert {op: stage.injected[op] for op in faults} == {op: times for op, (times, _, _) in faults.items()}
    copied = await listing(aws_s3, destination, f"backups/{backup_id}/documentlibrary/")
    assert set(copied) == set(layout.regular)


async def test_faults_fail_the_backup_with_a_clear_reason_and_the_services_keep_running(
    system: System, stage: Stage, instance: str, aws_buckets: tuple[str, str], unique: str
) -> None:
    source, destination = aws_buckets

    async def failed(spec: dict[str, Any]) -> str:
        backup_id = await request_backup(system, spec)
        doc = await system.wait_for(backup_id, timeout=90)
        assert doc["state"] == "Failed", json.dumps(doc, indent=1)
        return str(doc["message"])

    missing_db = f"no-such-db-{unique}"
    reason = await failed(aws_spec(missing_db, source, destination))
    assert f"'{missing_db}' not found in region us-east-1" in reason and "spec.database.instanceId" in reason

    missing_bucket = f"no-such-bucket-{unique}"
    reason = await failed(aws_spec(instance, missing_bucket, destination))
    assert f"source bucket {missing_bucket} does not exist" in reason

    reason = await failed(aws_spec(instance, source, missing_bucket))  # the backup bucket must exist beforehand
    assert f"destination bucket {missing_bucket} does not exist" in reason and "never creates buckets" in reason
    assert "access denied" not in reason.lower(), reason

    stage.fail("CreateDBSnapshot", times=1, code="AccessDenied", status=403, message="not authorized")
    reason = await failed(aws_spec(instance, source, destination))
    assert f"access denied to RDS instance '{instance}'" in reason and "rds:CreateDBSnapshot" in reason

    cause = "The IAM role lc2-rds-export is not allowed to write to the S3 bucket"
    stage.set_fields("DescribeExportTasks", {"Status": "FAILED", "FailureCause": cause})
    reason = await failed(aws_spec(instance, source, destination))
    assert f"RDS reports the export FAILED: {cause}" in reason
    stage.set_fields("DescribeExportTasks", None)

    backup_id = await request_backup(system, aws_spec(instance, source, destination))
    doc = await system.wait_for(backup_id, timeout=90)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    assert system.services is not None
    assert all(svc.process is not None and svc.process.alive() for svc in system.services.services.values())
