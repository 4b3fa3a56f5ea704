"""The CR's intake, status and Events as pure functions of the fold: no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from lc2backup.crd_gateway import crd
from lc2backup.crd_gateway.projection import intake_of, merge_patch, status_of, transition_of
from lc2backup.domain import BackupState, Problem, RequestSource, backup_id_for_resource, fold, parse_spec
from lc2backup.domain import events as ev
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


def state_after(*events: DomainEvent) -> BackupState:
    backup_id = backup_id_for_resource(UID)
    recorded = []
    for seq, event in enumerate(events, start=1):
        envelope = Envelope(
            id=event_id(backup_id, event.dedupe_key()), type=event.event_type, schema_version=event.schema_version,
            backup_id=backup_id, occurred_at=T0 + timedelta(seconds=seq), correlation_id="c", producer="test",
            data=event.model_dump(mode="json", by_alias=True),
        )  # fmt: skip
        recorded.append(RecordedEvent(envelope, event, seq))
    return fold(backup_id, recorded)


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
    schema = crd.crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
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
    declared = schema.get("properties", {})
    found = [f"{path}.{key}" for key in value if key not in declared]
    return found + [p for k, v in value.items() if k in declared for p in _undeclared(v, declared[k], f"{path}.{k}")]


def test_every_status_the_gateway_renders_is_what_the_crd_declares() -> None:
    """The CRD's status schema is generated from the model that renders the status: every field is typed (none
    kept open with x-kubernetes-preserve-unknown-fields) and every key rendered is declared, at every depth."""
    schema = crd.status_schema()
    assert "x-kubernetes-preserve-unknown-fields" not in str(schema)
    snapshotting = (
        SUCCEEDED[0],
        ev.DatabaseSnapshotStarted(snapshot_id="sn", instance_id="db1"),
        ev.DatabaseSnapshotCompleted(snapshot_id="sn", location="arn", size_bytes=3, engine="pg", engine_version="16"),
        SUCCEEDED[2],
        ev.DocumentLibraryTransferProgressed(report=1, attempt=2, counters=COUNTERS),
        ev.DatabaseExportProgressed(report=1, bytes_written=5, estimated_total_bytes=10, percent=50),
    )
    failed = (SUCCEEDED[0], ev.DatabaseBranchFailed(step="export", reason="x"))
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
