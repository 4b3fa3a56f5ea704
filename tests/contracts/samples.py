"""Real messages built from the models: at least one per event type (all fields, and only the required ones).

A new event type without a sample here fails ``test_every_event_type_has_a_sample``.
"""

from __future__ import annotations

from typing import Any

from lc2backup.domain import BackupRequestSpec, Problem, RequestSource, TransferCounters
from lc2backup.domain import events as ev
from lc2backup.domain.restoring import DatabasePlan, DocumentLibraryPlan, RestorePlan, RestoreRequestSpec
from lc2backup.domain.wire import DomainEvent

BACKUP_ID = "3f9c1f4e-8f0b-5c1e-9a57-0d2b6c7e4a11"

LOCAL_SPEC: dict[str, Any] = {
    "projectId": "retail",
    "environment": "prd",
    "provider": "local",
    "database": {"type": "dump", "instanceId": "liferay-db", "databaseName": "lportal"},
    "documentLibrary": {
        "sourceBucket": "retail-prd-doclib",
        "sourcePrefix": "document_library/",
        "destinationBucket": "retail-backups",
        "destinationPrefix": "retail/prd/",
        "excludeGeneratedFiles": True,
    },
    "retentionDays": 14,
    "tags": {"team": "platform", "cost-center/id": "42"},
}
AWS_SPEC: dict[str, Any] = {
    "projectId": "shop",
    "environment": "uat",
    "provider": "aws",
    "database": {"type": "snapshot", "instanceId": "shop-uat-mysql", "databasesToIgnore": ["sys", "tmp_import"]},
    "documentLibrary": {"sourceBucket": "shop-uat-doclib", "destinationBucket": "shop-backups"},
}

COUNTERS = TransferCounters(
    objects_found=1200,
    objects_copied=800,
    bytes_copied=52_428_800,
    objects_excluded=300,
    bytes_excluded=1_048_576,
    objects_vanished=2,
    listing_complete=True,
)
EXCLUDED = ["document_library/20097/0/document_thumbnail/", "document_library/20097/0/adaptive/"]
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
EXPORT = f"s3://retail-backups/retail/prd/{BACKUP_ID}/database/lportal.dump"
RESTORE_ID = "8a1d2b3c-4e5f-5a6b-8c7d-9e0f1a2b3c4d"
FOLDER = f"s3://retail-backups/retail/prd/{BACKUP_ID}/"

# A restore of the local backup above into new targets of another environment, and a verification (the defaults).
RESTORE_SPEC: dict[str, Any] = {
    "backupId": BACKUP_ID,
    "target": {"projectId": "retail", "environment": "uat"},
    "include": "all",
    "database": {"instanceId": "liferay-db", "databaseName": "lportal_uat"},
    "documentLibrary": {"bucket": "retail-uat-doclib", "prefix": "document_library/", "merge": True},
    "purpose": "restore",
    "keepFailedHours": 48,
}
VERIFY_SPEC: dict[str, Any] = {"backupId": BACKUP_ID, "purpose": "verification"}
RESTORE_PLAN = RestorePlan(
    backup_id=BACKUP_ID,
    provider="local",
    project_id="retail",
    environment="prd",
    target_project_id="retail",
    target_environment="uat",
    keep_failed_hours=48,
    metadata_location=f"{FOLDER}metadata.json",
    database=DatabasePlan(
        artefact=EXPORT,
        format="pg_dump-custom",
        sha256=SHA,
        size_bytes=4096,
        source_instance="liferay-db",
        source_database="lportal",
        target_instance="liferay-db",
        target_database="lportal_uat",
        figures=f"{FOLDER}database/lportal.figures.json",
    ),
    document_library=DocumentLibraryPlan(
        source_bucket="retail-backups",
        source_prefix=f"retail/prd/{BACKUP_ID}/documentlibrary/",
        manifest_key=f"retail/prd/{BACKUP_ID}/documentlibrary.manifest.jsonl",
        objects=800,
        bytes=52_428_800,
        target_bucket="retail-uat-doclib",
        target_prefix="document_library/",
        merge=True,
    ),
)
VERIFY_PLAN = RestorePlan(
    backup_id=BACKUP_ID,
    provider="local",
    project_id="retail",
    environment="prd",
    target_project_id="retail",
    target_environment="prd",
    purpose="verification",
    database=DatabasePlan(
        artefact=EXPORT,
        format="pg_dump-custom",
        source_instance="liferay-db",
        target_instance="liferay-db",
        target_database="lc2verify_8a1d2b3c",
    ),
)


def spec(raw: dict[str, Any]) -> BackupRequestSpec:
    return BackupRequestSpec.model_validate(raw)


def restore_spec(raw: dict[str, Any]) -> RestoreRequestSpec:
    return RestoreRequestSpec.model_validate(raw)


EVENT_SAMPLES: dict[type[DomainEvent], list[DomainEvent]] = {
    ev.BackupRequested: [
        ev.BackupRequested(
            spec=spec(LOCAL_SPEC),
            source=RequestSource(kind="kubernetes", namespace="liferay", name="nightly", uid="b1e2", generation=3),
        ),
        ev.BackupRequested(spec=spec(AWS_SPEC), source=RequestSource(kind="nats")),
    ],
    ev.BackupRejected: [
        ev.BackupRejected(
            problems=[
                Problem(field="spec.database.instanceId", message="Field required", type="missing"),
                Problem(field="spec.environment", message="must be a DNS label"),
            ],
            source=RequestSource(kind="api", command_id="idem-1"),
            project_id="retail",
            environment="PRD!",
        ),
        ev.BackupRejected(
            problems=[Problem(field="spec", message="must be an object")], source=RequestSource(kind="nats")
        ),
    ],
    ev.BackupQueued: [ev.BackupQueued(position=3, behind="4b0e4a3c-9f3e-5b8e-a0b5-4f1f6c2d9e10")],
    ev.BackupAdmitted: [ev.BackupAdmitted()],
    ev.DatabaseSnapshotStarted: [
        ev.DatabaseSnapshotStarted(snapshot_id="lc2-3f9c1f4e-snapshot", instance_id="shop-uat")
    ],
    ev.DatabaseSnapshotCompleted: [
        ev.DatabaseSnapshotCompleted(
            snapshot_id="lc2-3f9c1f4e-snapshot",
            location="arn:aws:rds:eu-west-1:123456789012:snapshot:lc2-3f9c1f4e-snapshot",
            size_bytes=21_474_836_480,
            engine="mysql",
            engine_version="8.0.39",
        ),
        ev.DatabaseSnapshotCompleted(snapshot_id="lc2-3f9c1f4e-snapshot"),
    ],
    ev.DatabaseExportStarted: [
        ev.DatabaseExportStarted(
            operation_id="lc2-3f9c1f4e-export", location=EXPORT, format="parquet", restorable=False
        )
    ],
    ev.DatabaseExportProgressed: [
        ev.DatabaseExportProgressed(report=1, bytes_written=1024, estimated_total_bytes=4096, percent=25),
        ev.DatabaseExportProgressed(report=2),
    ],
    ev.DatabaseExportCompleted: [
        ev.DatabaseExportCompleted(
            location=EXPORT,
            format="pg_dump-custom",
            restorable=True,
            size_bytes=4096,
            sha256=SHA,
            engine="postgres",
            engine_version="16.4",
            extracted_gb=0.5,
        ),
        ev.DatabaseExportCompleted(location=EXPORT, format="parquet", restorable=False),
    ],
    ev.DatabaseBranchFailed: [ev.DatabaseBranchFailed(step="export", reason="pg_dump exited with status 1")],
    ev.DatabaseBranchCancelled: [
        ev.DatabaseBranchCancelled(
            reason="the backup failed (documentLibrary): bucket retail-prd-doclib does not exist"
        )
    ],
    ev.DocumentLibraryTransferStarted: [
        ev.DocumentLibraryTransferStarted(
            job_id="lc2-3f9c1f4e-doclib",
            method="s3-copy",
            source="s3://retail-prd-doclib/document_library/",
            destination=f"s3://retail-backups/retail/prd/{BACKUP_ID}/document_library/",
            exclude_generated_files=True,
            excluded_prefixes=EXCLUDED,
        ),
        ev.DocumentLibraryTransferStarted(
            job_id="j", method="local", source="/a", destination="/b", exclude_generated_files=False
        ),
    ],
    ev.DocumentLibraryTransferProgressed: [
        ev.DocumentLibraryTransferProgressed(report=3, attempt=2, counters=COUNTERS),
        ev.DocumentLibraryTransferProgressed(report=1, counters=TransferCounters()),
    ],
    ev.DocumentLibraryTransferCompleted: [
        ev.DocumentLibraryTransferCompleted(counters=COUNTERS, manifest_location=f"s3://retail-backups/{BACKUP_ID}/m"),
        ev.DocumentLibraryTransferCompleted(counters=TransferCounters()),
    ],
    ev.DocumentLibraryTransferFailed: [ev.DocumentLibraryTransferFailed(reason="AccessDenied on retail-prd-doclib")],
    ev.DocumentLibraryTransferCancelled: [
        ev.DocumentLibraryTransferCancelled(reason="the backup failed (database): database lportal does not exist")
    ],
    ev.BackupMetadataWritten: [
        ev.BackupMetadataWritten(location=f"s3://retail-backups/{BACKUP_ID}/metadata.json", size_bytes=2048, sha256=SHA)
    ],
    ev.BackupSucceeded: [ev.BackupSucceeded(metadata_location=f"s3://retail-backups/{BACKUP_ID}/metadata.json")],
    ev.BackupFailed: [
        ev.BackupFailed(branch="documentLibrary", reason="AccessDenied on retail-prd-doclib"),
        ev.BackupFailed(
            branch="database",
            reason="database lportal does not exist",
            leftovers=[f"s3://retail-backups/retail/prd/{BACKUP_ID}/"],
        ),
    ],
    ev.RestoreRequested: [
        ev.RestoreRequested(
            spec=restore_spec(RESTORE_SPEC),
            source=RequestSource(kind="api", command_id=f"api:restore:{RESTORE_ID}"),
            plan=RESTORE_PLAN,
        ),
        ev.RestoreRequested(spec=restore_spec(VERIFY_SPEC), source=RequestSource(kind="nats"), plan=VERIFY_PLAN),
        ev.RestoreRequested(spec=restore_spec(VERIFY_SPEC), source=RequestSource(kind="nats")),  # rejected at once
    ],
    ev.RestoreRejected: [
        ev.RestoreRejected(
            problems=[
                Problem(field="spec.backupId", message=f"backup {BACKUP_ID} is Failed", type="not_restorable"),
                Problem(field="spec.database.overwrite.confirm", message="must name the target exactly: db/lportal"),
            ]
        )
    ],
    ev.RestoreAdmitted: [ev.RestoreAdmitted()],
    ev.RestoreValidated: [
        ev.RestoreValidated(checks=["metadata.json matches the log", "database liferay-db/lportal_uat is new"]),
        ev.RestoreValidated(),
    ],
    ev.DatabaseRestoreStarted: [
        ev.DatabaseRestoreStarted(operation_id=f"lc2-restore-{RESTORE_ID}", target="liferay-db/lportal_uat")
    ],
    ev.DatabaseRestoreProgressed: [
        ev.DatabaseRestoreProgressed(report=2, bytes_done=2048, bytes_total=4096),
        ev.DatabaseRestoreProgressed(report=1),
    ],
    ev.DatabaseRestoreCompleted: [
        ev.DatabaseRestoreCompleted(target="liferay-db/lportal_uat", bytes_read=4096),
        ev.DatabaseRestoreCompleted(target="liferay-db/lportal_uat"),
    ],
    ev.DatabaseRestoreFailed: [ev.DatabaseRestoreFailed(reason="pg_restore exited with status 1: out of disk")],
    ev.DocumentLibraryRestoreStarted: [
        ev.DocumentLibraryRestoreStarted(
            source=f"{FOLDER}documentlibrary/",
            destination="s3://retail-uat-doclib/document_library/",
            objects_total=800,
            bytes_total=52_428_800,
        ),
        ev.DocumentLibraryRestoreStarted(source="s3://a/b/", destination="s3://c/d/"),
    ],
    ev.DocumentLibraryRestoreProgressed: [
        ev.DocumentLibraryRestoreProgressed(report=1, objects_done=400, bytes_done=26_214_400)
    ],
    ev.DocumentLibraryRestoreCompleted: [
        ev.DocumentLibraryRestoreCompleted(objects=800, bytes=52_428_800, objects_copied=790)
    ],
    ev.DocumentLibraryRestoreFailed: [ev.DocumentLibraryRestoreFailed(reason="AccessDenied on retail-uat-doclib")],
    ev.VerificationSucceeded: [
        ev.VerificationSucceeded(
            summary=ev.VerificationSummary(
                tables=212, rows=1_048_576, objects=800, bytes=52_428_800, objects_sampled=50
            ),
            checks=["rows and checksum of every table", "Liferay smoke queries", "objects against the manifest"],
        ),
        ev.VerificationSucceeded(summary=ev.VerificationSummary()),
    ],
    ev.VerificationFailed: [
        ev.VerificationFailed(
            summary=ev.VerificationSummary(tables=212, rows=1_048_570),
            findings=["table user_: 6 rows fewer than the backup recorded"],
        )
    ],
    ev.ScratchRemoved: [
        ev.ScratchRemoved(
            removed=["liferay-db/lc2verify_8a1d2b3c", f"s3://retail-backups/retail/prd/lc2-verify/{RESTORE_ID}/"]
        ),
        ev.ScratchRemoved(removed=[]),
    ],
    ev.RestoreSucceeded: [ev.RestoreSucceeded()],
    ev.RestoreFailed: [
        ev.RestoreFailed(
            reasons={"database": "pg_restore exited with status 1", "documentLibrary": "AccessDenied"},
            leftovers=["liferay-db/lportal_uat", "s3://retail-uat-doclib/document_library/"],
        ),
        ev.RestoreFailed(reasons={"verification": "table user_: 6 rows fewer"}),
    ],
}

# Payloads pydantic refuses; the schema must refuse them too (type, wire data).
INVALID_PAYLOADS: list[tuple[type[DomainEvent], dict[str, Any]]] = [
    (ev.DatabaseExportProgressed, {"report": 0}),
    (ev.DatabaseExportProgressed, {"report": 1, "percent": 101}),
    (ev.DatabaseSnapshotStarted, {"snapshotId": "s"}),
    (ev.BackupSucceeded, {"metadataLocation": "s3://b/k", "unknown": 1}),
    (ev.BackupFailed, {"branch": "network", "reason": "down"}),
    (ev.BackupRejected, {"problems": [], "source": {"kind": "nats"}}),
    (ev.BackupRequested, {"spec": LOCAL_SPEC | {"projectId": "Retail"}, "source": {"kind": "nats"}}),
    (ev.BackupRequested, {"spec": LOCAL_SPEC | {"tags": {"-bad-key": "x"}}, "source": {"kind": "nats"}}),
    (ev.BackupRequested, {"spec": LOCAL_SPEC | {"retentionDays": 0}, "source": {"kind": "nats"}}),
    (ev.BackupRequested, {"spec": LOCAL_SPEC, "source": {"kind": "email"}}),
    (ev.RestoreRequested, {"spec": RESTORE_SPEC | {"backupId": "latest"}, "source": {"kind": "nats"}}),
    (ev.RestoreRequested, {"spec": RESTORE_SPEC | {"include": "everything"}, "source": {"kind": "nats"}}),
    (ev.RestoreRequested, {"spec": VERIFY_SPEC | {"keepFailedHours": 721}, "source": {"kind": "nats"}}),
    (ev.RestoreRejected, {"problems": []}),
    (ev.DatabaseRestoreProgressed, {"report": 0}),
    (ev.DocumentLibraryRestoreCompleted, {"objects": 1, "bytes": -1, "objectsCopied": 1}),
    (ev.VerificationFailed, {"summary": {}, "findings": []}),
    (ev.RestoreFailed, {"reasons": {}}),
]

COMMANDS: dict[str, dict[str, Any]] = {
    "spec only": {"spec": LOCAL_SPEC},
    "all fields": {
        "backupId": BACKUP_ID,
        "requestId": "nightly-2025-01-31",
        "spec": AWS_SPEC,
        "source": {"kind": "nats", "commandId": "nightly-2025-01-31"},
    },
    "manifest": {
        "apiVersion": "backup.liferay.cloud/v1alpha1",
        "kind": "BackupRequest",
        "metadata": {"name": "nightly", "namespace": "liferay", "labels": {"app": "lc2"}},
        "spec": LOCAL_SPEC,
        "status": {"phase": "Pending"},
    },
}
INVALID_COMMANDS: dict[str, dict[str, Any]] = {
    "no spec": {"requestId": "r"},
    "unknown field": {"spec": LOCAL_SPEC, "priority": "high"},
    "bad spec": {"spec": LOCAL_SPEC | {"provider": "ibm"}},
    "wrong kind": {"apiVersion": "backup.liferay.cloud/v1alpha1", "kind": "Backup", "spec": LOCAL_SPEC},
    "manifest without spec": {"apiVersion": "backup.liferay.cloud/v1alpha1", "kind": "BackupRequest"},
}

# Restore commands (lc2.backup.cmd.restore): the schema and the restorer's intake agree on each.
RESTORE_COMMANDS: dict[str, dict[str, Any]] = {
    "spec only": {"spec": VERIFY_SPEC},
    "all fields": {"restoreId": RESTORE_ID, "requestId": "uat-refresh-2025-02", "spec": RESTORE_SPEC},
    "overwrite confirmed": {
        "requestId": "r",
        "spec": {"backupId": BACKUP_ID, "include": "database", "database": {"overwrite": {"confirm": "db/lportal"}}},
    },
}
INVALID_RESTORE_COMMANDS: dict[str, dict[str, Any]] = {
    "no spec": {"requestId": "r"},
    "unknown field": {"spec": VERIFY_SPEC, "priority": "high"},
    "restoreId not a uuid": {"restoreId": "restore-1", "spec": VERIFY_SPEC},
    "no backupId": {"spec": {"purpose": "verification"}},
    "snake_case field": {"spec": VERIFY_SPEC | {"keep_failed_hours": 1}},
    "empty confirmation": {"spec": RESTORE_SPEC | {"database": {"overwrite": {"confirm": ""}}}},
}
