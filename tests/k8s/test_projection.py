"""The CRs' intake (a BackupRequest's intake, a RestoreRequest's restore command), status and Events as pure
functions of the fold: no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from lc2backup.crd_gateway import crd
from lc2backup.crd_gateway.projection import intake_of, merge_patch, status_of, transition_of
from lc2backup.crd_gateway.restore_projection import restore_command_of, restore_status_of, restore_transition_of
from lc2backup.domain import BackupState, Problem, RequestSource, backup_id_for_resource, fold, parse_spec
from lc2backup.domain import events as ev
from lc2backup.domain.restore_state import RestoreState, fold_restore
from lc2backup.domain.restoring import (
    DatabasePlan,
    DocumentLibraryPlan,
    RestorePlan,
    parse_restore_spec,
    read_restore_command,
    restore_id_for_resource,
)
from lc2backup.domain.wire import DomainEvent, Envelope, RecordedEvent, event_id

pytestmark = pytest.mark.k8s

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
UID = "5b0c8f0e-2f7a-4c0e-9a57-1b9b0f3d2c11"
SPEC = parse_spec({
    "projectId": "retail", "environment": "prd", "provider": "local",
    "database": {"type": "dump", "instanceId": "db1", "databaseName": "lportal"},
    "documentLibrary": {"sourceBucket": "liferay-dl", "destinationBucket": "lc2-backups"},
})  # fmt: skip
SOURCE = RequestSource(
    kind="kubernetes", command_id=f"k8s:{UID}", namespace="shop", name="nightly", uid=UID, generation=1
)
COUNTERS = ev.TransferCounters(
    objects_found=3, objects_copied=2, bytes_copied=20, objects_excluded=1, listing_complete=True
)


def recorded(aggregate_id: str, events: tuple[DomainEvent, ...]) -> list[RecordedEvent]:
    out = []
    for seq, event in enumerate(events, start=1):
        envelope = Envelope(
            id=event_id(aggregate_id, event.dedupe_key()), type=event.event_type, schema_version=event.schema_version,
            backup_id=aggregate_id, occurred_at=T0 + timedelta(seconds=seq), correlation_id="c", producer="test",
            data=event.model_dump(mode="json", by_alias=True),
        )  # fmt: skip
        out.append(RecordedEvent(envelope, event, seq))
    return out


def state_after(*events: DomainEvent) -> BackupState:
    backup_id = backup_id_for_resource(UID)
    return fold(backup_id, recorded(backup_id, events))


SUCCEEDED = (
    ev.BackupRequested(spec=SPEC, source=SOURCE),
    ev.DatabaseExportStarted(operation_id="op-1", location="s3://lc2-backups/x.dump", format="pg", restorable=True),
    ev.DocumentLibraryTransferStarted(
        job_id="job-1",
        method="copy",
        source="s3://liferay-dl/",
        destination="s3://lc2-backups/b/",
        exclude_generated_files=True,
    ),
    ev.DatabaseExportCompleted(location="s3://lc2-backups/x.dump", format="pg", restorable=True, size_bytes=10),
    ev.DocumentLibraryTransferCompleted(counters=COUNTERS),
    ev.BackupMetadataWritten(location="s3://lc2-backups/b/metadata.json", size_bytes=5, sha256="ab" * 32),
    ev.BackupSucceeded(metadata_location="s3://lc2-backups/b/metadata.json"),
)
REJECTED = ev.BackupRejected(
    problems=[
        Problem(field="spec.projectId", message="must be a DNS label", type="string_pattern_mismatch"),
        Problem(
            field="spec.retentionDays", message="Input should be less than or equal to 3650", type="less_than_equal"
        ),
    ],
    source=SOURCE,
)


def status_validator() -> jsonschema.Draft4Validator:
    schema = crd.BACKUP_REQUESTS.manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    return jsonschema.Draft4Validator(schema)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_cr_becomes_an_intake_named_by_its_uid() -> None:
    cr = {"metadata": {"namespace": "shop", "name": "nightly", "uid": UID, "generation": 1}, "spec": {"a": 1}}
    intake = intake_of(cr)
    assert intake.backup_id == backup_id_for_resource(UID)
    assert intake.source == SOURCE and intake.spec == {"a": 1} and intake.problems == []
    assert [p.field for p in intake_of({"metadata": cr["metadata"]}).problems] == ["spec"]


def test_succeeded_status_has_every_detail_and_ready_true() -> None:
    state = state_after(*SUCCEEDED)
    status = status_of(state, 1, {}, LATER)
    assert status["state"] == "Succeeded" and status["backupId"] == state.backup_id
    assert status["observedGeneration"] == 1 and status["lastEventSequence"] == len(SUCCEEDED)
    assert status["metadataLocation"] == "s3://lc2-backups/b/metadata.json"
    assert status["database"]["exportOperation"]["id"] == "op-1"
    assert status["documentLibrary"]["transferJob"]["id"] == "job-1"
    assert status["documentLibrary"]["counters"]["objectsExcluded"] == 1
    assert status["startTime"] == "2026-11-26T12:00:02Z" and status["completionTime"] == "2026-11-26T12:00:07Z"
    ready, failed = conditions(status)["Ready"], conditions(status)["Failed"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "True",
        "Succeeded",
        "2026-11-26T12:00:07Z",
    )
    assert (failed["status"], failed["reason"]) == ("False", "NotFailed")
    assert not list(status_validator().iter_errors(status))


def test_rejected_status_names_every_reason_in_message_and_conditions() -> None:
    status = status_of(state_after(REJECTED), 1, {}, LATER)
    assert status["state"] == "Rejected"
    for field in ("spec.projectId", "spec.retentionDays"):
        assert field in status["message"] and field in conditions(status)["Failed"]["message"]
    assert conditions(status)["Failed"]["status"] == "True" and conditions(status)["Failed"]["reason"] == "Rejected"
    assert conditions(status)["Ready"]["status"] == "False"
    assert [p["field"] for p in status["problems"]] == ["spec.projectId", "spec.retentionDays"]
    assert not list(status_validator().iter_errors(status))


def test_failed_status_names_the_branch() -> None:
    state = state_after(
        SUCCEEDED[0],
        ev.DatabaseBranchFailed(step="export", reason="pg_dump: connection refused"),
        ev.BackupFailed(branch="database", reason="export: pg_dump: connection refused"),
    )
    failed = conditions(status_of(state, 1, {}, LATER))["Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "DatabaseFailed")
    assert "connection refused" in failed["message"]


def _undeclared(value: Any, schema: dict[str, Any], path: str = "status") -> list[str]:
    """Every key of ``value`` its structural schema does not declare (what the API server would prune)."""
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _undeclared(item, schema.get("items", {}), f"{path}[{i}]")]
    if not isinstance(value, dict):
        return []
    if isinstance(schema.get("additionalProperties"), dict):  # a map: any key, each value of that schema
        values = schema["additionalProperties"]
        return [p for k, v in value.items() for p in _undeclared(v, values, f"{path}.{k}")]
    declared = schema.get("properties", {})
    found = [f"{path}.{key}" for key in value if key not in declared]
    return found + [p for k, v in value.items() if k in declared for p in _undeclared(v, declared[k], f"{path}.{k}")]


def test_every_status_the_gateway_renders_is_what_the_crd_declares() -> None:
    """The CRD's status schema is generated from the model that renders the status: every field is typed (none
    kept open with x-kubernetes-preserve-unknown-fields) and every key rendered is declared, at every depth."""
    schema = crd.BACKUP_REQUESTS.status_schema()
    assert "x-kubernetes-preserve-unknown-fields" not in str(schema)
    snapshotting = (
        SUCCEEDED[0],
        ev.DatabaseSnapshotStarted(snapshot_id="sn", instance_id="db1"),
        ev.DatabaseSnapshotCompleted(snapshot_id="sn", location="arn", size_bytes=3, engine="pg", engine_version="16"),
        SUCCEEDED[2],
        ev.DocumentLibraryTransferProgressed(report=1, attempt=2, counters=COUNTERS),
        ev.DatabaseExportProgressed(report=1, bytes_written=5, estimated_total_bytes=10, percent=50),
    )
    failed: tuple[DomainEvent, ...] = (SUCCEEDED[0], ev.DatabaseBranchFailed(step="export", reason="x"))
    failed += (ev.BackupFailed(branch="database", reason="x", leftovers=["s3://lc2-backups/b/"]),)
    histories = [SUCCEEDED[:n] for n in range(1, len(SUCCEEDED) + 1)] + [(REJECTED,), snapshotting, failed]
    for events in histories:
        status = status_of(state_after(*events), 1, {}, LATER)
        assert not list(status_validator().iter_errors(status)), events[-1]
        assert _undeclared(status, schema) == [], events[-1]
    # Control: a key the model does not have is found.
    status = status_of(state_after(*SUCCEEDED), 1, {}, LATER)
    status["documentLibrary"]["transferJob"]["surprise"] = 1
    assert _undeclared(status, schema) == ["status.documentLibrary.transferJob.surprise"]


def test_projecting_twice_changes_nothing() -> None:
    state = state_after(*SUCCEEDED[:3])
    first = status_of(state, 2, {}, LATER)
    again = status_of(state, 2, first, LATER + timedelta(minutes=5))
    assert again == first and merge_patch(first, again) == {}


def test_merge_patch_turns_old_into_new() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "gone": True}
    new = {"a": 1, "b": {"c": 2, "d": 4}, "e": [1]}
    assert merge_patch(old, new) == {"b": {"d": 4}, "e": [1], "gone": None}


def test_major_transitions_become_events() -> None:
    requested = transition_of("BackupRequested", state_after(SUCCEEDED[0]))
    assert requested is not None and (requested.type, requested.reason) == ("Normal", "BackupCreated")
    done = transition_of("BackupSucceeded", state_after(*SUCCEEDED))
    assert done is not None and done.reason == "BackupSucceeded"
    rejected = transition_of("BackupRejected", state_after(REJECTED))
    assert rejected is not None and (rejected.type, rejected.reason) == ("Warning", "BackupRejected")
    assert transition_of("DatabaseExportStarted", state_after(*SUCCEEDED[:2])) is None


# RestoreRequests

RESTORE_UID = "0e6f3c1a-9b2d-4f7e-8a15-3c4d5e6f7a8b"
RESTORE_SOURCE = RequestSource(
    kind="kubernetes", command_id=f"k8s:{RESTORE_UID}", namespace="shop", name="to-qa", uid=RESTORE_UID, generation=1
)
RESTORE_SPEC = parse_restore_spec(
    {"backupId": backup_id_for_resource(UID), "target": {"projectId": "retail", "environment": "qa"}}
)
PLAN = RestorePlan(
    backup_id=backup_id_for_resource(UID),
    provider="local",
    project_id="retail",
    environment="prd",
    target_project_id="retail",
    target_environment="qa",
    database=DatabasePlan(
        artefact="s3://lc2-backups/b/x.dump",
        format="pg_dump",
        size_bytes=1000,
        source_instance="db1",
        target_instance="db1",
        target_database="lportal_qa",
    ),
    document_library=DocumentLibraryPlan(
        source_bucket="lc2-backups", source_prefix="b/documentlibrary/", target_bucket="qa", target_prefix="liferay/"
    ),
)
RESTORED = (
    ev.RestoreRequested(spec=RESTORE_SPEC, source=RESTORE_SOURCE, plan=PLAN),
    ev.RestoreAdmitted(),
    ev.RestoreValidated(checks=["metadata.json"]),
    ev.DatabaseRestoreStarted(operation_id="pg_restore", target="db1/lportal_qa"),
    ev.DocumentLibraryRestoreStarted(
        source="s3://lc2-backups/b/documentlibrary/", destination="s3://qa/liferay/", objects_total=4, bytes_total=40
    ),
    ev.DatabaseRestoreProgressed(report=1, bytes_done=250),
    ev.DocumentLibraryRestoreProgressed(report=1, objects_done=3, bytes_done=30),
    ev.DatabaseRestoreCompleted(target="db1/lportal_qa", bytes_read=1000),
    ev.DocumentLibraryRestoreCompleted(objects=4, bytes=40, objects_copied=4),
    ev.RestoreSucceeded(),
)
RESTORE_REJECTED = (
    ev.RestoreRequested(spec=RESTORE_SPEC, source=RESTORE_SOURCE),
    ev.RestoreRejected(
        problems=[Problem(field="spec.backupId", message="backup is Failed, not Succeeded", type="not_succeeded")]
    ),
)
RESTORE_FAILED = (
    *RESTORED[:4],
    ev.DatabaseRestoreFailed(reason="pg_restore: exit 1"),
    ev.RestoreFailed(reasons={"database": "pg_restore: exit 1"}, leftovers=["db1/lportal_qa"]),
)
VERIFICATION = (
    ev.RestoreRequested(
        spec=RESTORE_SPEC.model_copy(update={"purpose": "verification"}),
        source=RESTORE_SOURCE,
        plan=PLAN.model_copy(update={"purpose": "verification"}),
    ),
    *RESTORED[1:9],
    ev.VerificationFailed(summary=ev.VerificationSummary(tables=3, rows=9), findings=["table user_: 2 rows, 3"]),
    ev.RestoreFailed(reasons={"verification": "table user_: 2 rows, 3"}, leftovers=["db1/lportal_qa"]),
)


def restore_after(*events: DomainEvent) -> RestoreState:
    restore_id = restore_id_for_resource(RESTORE_UID)
    return fold_restore(restore_id, recorded(restore_id, events))


def restore_status_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(crd.RESTORE_REQUESTS.status_schema())


def test_a_restore_request_becomes_one_restore_command_named_by_its_uid() -> None:
    cr = {"metadata": {"namespace": "shop", "name": "to-qa", "uid": RESTORE_UID, "generation": 1}, "spec": {"a": 1}}
    command = restore_command_of(cr)
    read = read_restore_command(command.model_dump_json(by_alias=True, exclude_none=True).encode(), "message-id")
    assert read.restore_id == restore_id_for_resource(RESTORE_UID) != restore_id_for_resource(UID)
    assert read.source == RESTORE_SOURCE
    assert [p.field for p in read.problems] == ["spec.backupId", "spec.a"]  # the restorer refuses this spec
    assert restore_id_for_resource(RESTORE_UID) != backup_id_for_resource(RESTORE_UID)  # its own namespace


def test_a_restore_status_shows_both_branches_and_their_progress() -> None:
    running = restore_status_of(restore_after(*RESTORED[:7]), 1, {}, LATER)
    assert (running["state"], running["target"], running["purpose"]) == ("Restoring", "retail/qa", "restore")
    db, dl = running["database"], running["documentLibrary"]
    assert (db["state"], db["bytesDone"], db["bytesTotal"], db["percent"]) == ("InProgress", 250, 1000, 25)
    assert (dl["objectsDone"], dl["objectsTotal"], dl["bytesDone"], dl["percent"]) == (3, 4, 30, 75)
    assert "objectsDone" not in db and dl["target"] == "s3://qa/liferay/"
    done = restore_status_of(restore_after(*RESTORED), 1, {}, LATER)
    assert done["state"] == "Succeeded" and done["restoreId"] == restore_id_for_resource(RESTORE_UID)
    assert done["backupId"] == backup_id_for_resource(UID) and done["lastEventSequence"] == len(RESTORED)
    assert (done["database"]["percent"], done["documentLibrary"]["percent"]) == (100, 100)
    ready = conditions(done)["Ready"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "True",
        "Succeeded",
        "2026-11-26T12:00:10Z",
    )
    assert restore_status_of(restore_after(*RESTORED), 1, done, LATER + timedelta(minutes=5)) == done


def test_a_rejected_restore_shows_its_problems_and_no_branch() -> None:
    status = restore_status_of(restore_after(*RESTORE_REJECTED), 1, {}, LATER)
    assert status["state"] == "Rejected" and "database" not in status and "documentLibrary" not in status
    assert status["problems"] == [
        {"field": "spec.backupId", "message": "backup is Failed, not Succeeded", "type": "not_succeeded"}
    ]
    failed = conditions(status)["Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "Rejected") and "spec.backupId" in failed["message"]


def test_a_failed_restore_shows_its_reasons_leftovers_and_verdict() -> None:
    failed = restore_status_of(restore_after(*RESTORE_FAILED), 1, {}, LATER)
    assert (failed["reasons"], failed["leftovers"]) == ({"database": "pg_restore: exit 1"}, ["db1/lportal_qa"])
    assert failed["database"]["message"] == "pg_restore: exit 1"
    assert conditions(failed)["Failed"]["reason"] == "DatabaseFailed"
    verification = restore_status_of(restore_after(*VERIFICATION), 1, {}, LATER)
    assert verification["purpose"] == "verification" and verification["state"] == "Failed"
    verdict = verification["verification"]
    assert (verdict["passed"], verdict["findings"], verdict["summary"]["rows"]) == (
        False,
        ["table user_: 2 rows, 3"],
        9,
    )
    assert conditions(verification)["Failed"]["reason"] == "VerificationFailed"


def test_every_restore_status_is_what_the_crd_declares() -> None:
    schema = crd.RESTORE_REQUESTS.status_schema()
    assert "x-kubernetes-preserve-unknown-fields" not in str(schema)
    histories = [RESTORED[:n] for n in range(1, len(RESTORED) + 1)] + [RESTORE_REJECTED, RESTORE_FAILED, VERIFICATION]
    for events in histories:
        status = restore_status_of(restore_after(*events), 1, {}, LATER)
        assert not list(restore_status_validator().iter_errors(status)), events[-1]
        assert _undeclared(status, schema) == [], events[-1]
    status = restore_status_of(restore_after(*VERIFICATION), 1, {}, LATER)
    status["verification"]["summary"]["surprise"] = 1  # control: a key the model does not have is found
    assert _undeclared(status, schema) == ["status.verification.summary.surprise"]


def test_major_restore_transitions_become_events() -> None:
    requested = restore_transition_of("RestoreRequested", restore_after(RESTORED[0]))
    assert requested is not None and (requested.type, requested.reason) == ("Normal", "RestoreCreated")
    assert "into retail/qa" in requested.message and backup_id_for_resource(UID) in requested.message
    done = restore_transition_of("RestoreSucceeded", restore_after(*RESTORED))
    assert done is not None and done.reason == "RestoreSucceeded"
    rejected = restore_transition_of("RestoreRejected", restore_after(*RESTORE_REJECTED))
    assert rejected is not None and (rejected.type, rejected.reason) == ("Warning", "RestoreRejected")
    failed = restore_transition_of("RestoreFailed", restore_after(*RESTORE_FAILED))
    assert failed is not None and (failed.type, failed.reason) == ("Warning", "RestoreFailed")
    assert restore_transition_of("DatabaseRestoreProgressed", restore_after(*RESTORED[:6])) is None
