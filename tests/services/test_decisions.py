"""Each service's pure decisions: what to do next, and recording an outcome only once."""

from __future__ import annotations

import json
from datetime import timedelta

from lc2backup.crd_gateway.domain import Lane, decide_admission, decide_intake, lane_key
from lc2backup.db_export import domain as db
from lc2backup.doclib_transfer import domain as dl
from lc2backup.domain import Intake, RequestSource, TransferCounters, parse_intake
from lc2backup.domain import events as ev
from lc2backup.domain.wire import DomainEvent
from lc2backup.metadata import domain as md
from tests.domain.test_fold import SOURCE, SPEC, T0, state_after

REQUESTED_ONLY = ev.BackupRequested(spec=SPEC, source=SOURCE)
ADMITTED = ev.BackupAdmitted()
EXPORT_STARTED = ev.DatabaseExportStarted(operation_id="op", location="s3://b/e", format="f", restorable=True)
EXPORT_DONE = ev.DatabaseExportCompleted(location="s3://b/e", format="f", restorable=True, size_bytes=1)
TRANSFER_STARTED = ev.DocumentLibraryTransferStarted(
    job_id="j", method="m", source="s", destination="d", exclude_generated_files=True
)
TRANSFER_DONE = ev.DocumentLibraryTransferCompleted(counters=TransferCounters(objects_copied=1))
HOUR = timedelta(hours=1)


def types(events: list[DomainEvent]) -> list[str]:
    return [e.event_type for e in events]


# crd-gateway --------------------------------------------------------------------------------------------


def test_intake_requests_once_and_rejects_with_every_reason() -> None:
    good = parse_intake(Intake("b1", SPEC.model_dump(mode="json", by_alias=True), RequestSource(kind="api"), []))
    assert types(decide_intake(state_after(), good)) == ["BackupRequested"]
    assert decide_intake(state_after(REQUESTED_ONLY, ADMITTED), good) == []  # re-sent command: nothing
    bad = parse_intake(Intake("b1", {"projectId": "Nope"}, RequestSource(kind="nats"), []))
    [rejected] = decide_intake(state_after(), bad)
    assert isinstance(rejected, ev.BackupRejected)
    assert len(rejected.problems) >= 4 and rejected.project_id == "Nope"


# db-export ----------------------------------------------------------------------------------------------


def test_database_steps_for_a_dump() -> None:
    now = T0 + timedelta(minutes=1)
    assert db.next_step(state_after(REQUESTED_ONLY, ADMITTED), now, HOUR).kind == "start_export"
    assert db.next_step(state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED), now, HOUR).kind == "check_export"
    assert (
        db.next_step(state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, EXPORT_DONE), now, HOUR).kind == "finished"
    )
    assert db.next_step(state_after(), now, HOUR).kind == "finished"  # no backup: nothing to do


def test_database_steps_for_a_snapshot() -> None:
    spec = SPEC.model_copy(
        update={"provider": "aws", "database": SPEC.database.model_copy(update={"type": "snapshot"})}
    )
    requested = ev.BackupRequested(spec=spec, source=SOURCE)
    now = T0 + timedelta(minutes=1)
    assert db.next_step(state_after(requested, ADMITTED), now, HOUR).kind == "start_snapshot"
    started = ev.DatabaseSnapshotStarted(snapshot_id="s", instance_id="i")
    assert db.next_step(state_after(requested, ADMITTED, started), now, HOUR).kind == "check_snapshot"
    done = ev.DatabaseSnapshotCompleted(snapshot_id="s")
    assert db.next_step(state_after(requested, ADMITTED, started, done), now, HOUR).kind == "start_export"
    assert db.failing_step(state_after(requested, ADMITTED, started)) == "snapshot"
    assert db.failing_step(state_after(requested, ADMITTED, started, done)) == "export"


def test_database_deadline() -> None:
    state = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED)
    step = db.next_step(state, T0 + timedelta(hours=2), HOUR)
    assert step.kind == "timed_out" and "did not finish within 1:00:00" in step.reason


def test_a_database_branch_that_cannot_even_start_is_bounded_by_the_deadline_too() -> None:
    admitted = state_after(REQUESTED_ONLY, ADMITTED)  # e.g. the store or the cloud API unreachable since then
    assert admitted.admitted_at is not None
    step = db.next_step(admitted, admitted.admitted_at + 2 * HOUR, HOUR)
    assert step.kind == "timed_out" and "export could not be started within 1:00:00" in step.reason
    assert db.next_step(state_after(REQUESTED_ONLY), T0 + 2 * HOUR, HOUR).kind == "finished"  # queued: no clock
    assert db.record_failure(state_after(), "export", "no such backup") == []  # poison names no backup


def test_database_outcomes_are_recorded_once() -> None:
    state = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED)
    assert types(db.record_export_completed(state, EXPORT_DONE)) == ["DatabaseExportCompleted"]
    assert (
        db.record_export_completed(state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, EXPORT_DONE), EXPORT_DONE)
        == []
    )
    assert db.record_export_started(state, EXPORT_STARTED) == []
    assert types(db.record_failure(state, "export", "boom")) == ["DatabaseBranchFailed"]
    failed = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, ev.DatabaseBranchFailed(step="export", reason="x"))
    assert db.record_failure(failed, "export", "again") == []


def test_database_progress_only_when_something_changed() -> None:
    state = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED)
    [first] = db.record_export_progress(state, 100, 1000, None)
    assert isinstance(first, ev.DatabaseExportProgressed) and first.report == 1
    after = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, first)
    assert db.record_export_progress(after, 100, 1000, None) == []
    [second] = db.record_export_progress(after, 200, 1000, None)
    assert isinstance(second, ev.DatabaseExportProgressed) and second.report == 2


# doclib-transfer ----------------------------------------------------------------------------------------


def test_transfer_steps_and_records() -> None:
    now = T0 + timedelta(minutes=1)
    assert dl.next_step(state_after(REQUESTED_ONLY, ADMITTED), now, HOUR)[0] == "start"
    running = state_after(REQUESTED_ONLY, ADMITTED, TRANSFER_STARTED)
    assert dl.next_step(running, now, HOUR)[0] == "check"
    assert dl.next_step(running, T0 + timedelta(hours=3), HOUR)[0] == "timed_out"
    assert dl.record_started(running, TRANSFER_STARTED) == []
    counters = TransferCounters(objects_copied=5)
    [progress] = dl.record_progress(running, counters, attempt=1)
    assert (
        dl.record_progress(state_after(REQUESTED_ONLY, ADMITTED, TRANSFER_STARTED, progress), counters, attempt=1) == []
    )
    assert types(dl.record_completed(running, counters, "s3://m")) == ["DocumentLibraryTransferCompleted"]
    done = state_after(REQUESTED_ONLY, ADMITTED, TRANSFER_STARTED, TRANSFER_DONE)
    assert dl.record_completed(done, counters, None) == [] and dl.record_failure(done, "late") == []


def test_a_transfer_that_cannot_even_start_is_bounded_by_the_deadline_too() -> None:
    admitted = state_after(REQUESTED_ONLY, ADMITTED)
    assert admitted.admitted_at is not None
    kind, reason = dl.next_step(admitted, admitted.admitted_at + 2 * HOUR, HOUR)
    assert kind == "timed_out" and "transfer could not be started within 1:00:00" in reason
    assert dl.record_failure(state_after(), "no such backup") == []


# metadata -----------------------------------------------------------------------------------------------


def test_metadata_waits_for_both_branches() -> None:
    assert md.next_action(state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, EXPORT_DONE)) == "nothing"
    both = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, TRANSFER_STARTED, EXPORT_DONE, TRANSFER_DONE)
    assert md.next_action(both) == "write_metadata"
    assert md.record_succeeded(both) == []  # not before metadata.json exists
    written = state_after(
        REQUESTED_ONLY,
        ADMITTED,
        EXPORT_STARTED,
        TRANSFER_STARTED,
        EXPORT_DONE,
        TRANSFER_DONE,
        ev.BackupMetadataWritten(location="s3://b/m.json", size_bytes=1, sha256="0" * 64),
    )
    assert md.next_action(written) == "succeed"
    assert types(md.record_succeeded(written)) == ["BackupSucceeded"]


def test_metadata_json_that_cannot_be_written_is_overdue_after_the_deadline() -> None:
    both = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, TRANSFER_STARTED, EXPORT_DONE, TRANSFER_DONE)
    assert both.document_library.completed_at is not None
    done = both.document_library.completed_at
    assert not md.write_overdue(both, done + HOUR / 2, HOUR)
    assert md.write_overdue(both, done + 2 * HOUR, HOUR)
    assert types(md.record_metadata_failure(both, "store unreachable")) == ["BackupFailed"]
    assert md.record_metadata_failure(state_after(), "poison") == []  # never fail a backup that does not exist


def test_metadata_fails_with_the_failing_branchs_reason() -> None:
    failed = state_after(
        REQUESTED_ONLY,
        ADMITTED,
        EXPORT_STARTED,
        EXPORT_DONE,
        TRANSFER_STARTED,
        ev.DocumentLibraryTransferFailed(reason="bucket gone"),
    )
    [event] = md.record_failed(failed)  # the database branch has completed: nothing to cancel
    assert isinstance(event, ev.BackupFailed) and event.branch == "documentLibrary" and event.reason == "bucket gone"


def test_a_failed_branch_cancels_the_running_one_and_the_failure_lists_what_was_left() -> None:
    db_failed = ev.DatabaseBranchFailed(step="export", reason="database lportal does not exist")
    failing = state_after(REQUESTED_ONLY, ADMITTED, TRANSFER_STARTED, EXPORT_STARTED, db_failed)
    cancel, failed = md.record_failed(failing)
    assert isinstance(cancel, ev.DocumentLibraryTransferCancelled) and "database lportal" in cancel.reason
    assert isinstance(failed, ev.BackupFailed) and failed.branch == "database"
    assert failed.leftovers == ["s3://lc2-backups/b1/"]  # the backup's folder: partial dump, copied objects

    after = state_after(REQUESTED_ONLY, ADMITTED, TRANSFER_STARTED, EXPORT_STARTED, db_failed, cancel)
    assert after.document_library.state == "Cancelled" and after.state != "Failed"
    assert types(md.record_failed(after)) == ["BackupFailed"]  # a redelivery cancels nothing twice
    # the cancelled branch decides nothing more: no start, no progress, no outcome of its own
    assert dl.next_step(after, T0, HOUR)[0] == "finished"
    assert dl.record_progress(after, TransferCounters(objects_copied=9), attempt=1) == []
    assert dl.record_completed(after, TransferCounters(), None) == [] and dl.record_failure(after, "x") == []

    pending = state_after(REQUESTED_ONLY, ADMITTED, ev.DocumentLibraryTransferFailed(reason="bucket gone"))
    cancel_db, _ = md.record_failed(pending)  # a branch that never started is cancelled too
    assert isinstance(cancel_db, ev.DatabaseBranchCancelled)
    stopped = state_after(REQUESTED_ONLY, ADMITTED, ev.DocumentLibraryTransferFailed(reason="x"), cancel_db)
    assert stopped.database.state == "Cancelled" and db.next_step(stopped, T0, HOUR).kind == "finished"
    assert db.record_export_started(stopped, EXPORT_STARTED) == [] and db.record_failure(stopped, "export", "x") == []

    not_admitted = state_after(REQUESTED_ONLY, ev.DatabaseBranchFailed(step="export", reason="x"))
    *_, never_started = md.record_failed(not_admitted)
    assert isinstance(never_started, ev.BackupFailed) and never_started.leftovers == []
    both_running = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, TRANSFER_STARTED)
    assert types(md.record_metadata_failure(both_running, "internal error")) == [
        "DatabaseBranchCancelled",
        "DocumentLibraryTransferCancelled",
        "BackupFailed",
    ]


def test_metadata_document_depends_only_on_the_log() -> None:
    both = state_after(REQUESTED_ONLY, ADMITTED, EXPORT_STARTED, TRANSFER_STARTED, EXPORT_DONE, TRANSFER_DONE)
    a, b = md.metadata_document(both).render(), md.metadata_document(both).render()
    assert a == b
    doc = json.loads(a)
    assert doc["backupId"] == "b1" and doc["database"]["export"]["restorable"] is True
    assert doc["tags"]["projectId"] == "retail" and doc["retentionDays"] == 30
    assert md.belongs_to(a, "b1") and not md.belongs_to(a, "b2") and not md.belongs_to(b"not json", "b1")


# admission (crd-gateway) ----------------------------------------------------------------------------------


def test_lanes_admit_one_at_a_time_in_request_order() -> None:
    lane = Lane().enter("a").enter("b").enter("c").enter("b")
    assert (lane.active, lane.queue) == ("a", ("b", "c"))
    assert lane.position("c") == 2 and lane.position("a") is None
    assert lane.leave("b") == Lane("a", ("c",))  # a queued backup that ends leaves its place
    after = lane.leave("a")
    assert (after.active, after.queue) == ("b", ("c",))
    assert after.leave("a") == after  # leaving twice changes nothing
    assert Lane.decode(after.encode()) == after and Lane.decode(None) == Lane()


def test_admission_decisions() -> None:
    requested = state_after(REQUESTED_ONLY)
    assert lane_key(requested) == "retail.prd" and lane_key(state_after()) is None
    assert types(decide_admission(requested, Lane("b1"))) == ["BackupAdmitted"]
    assert decide_admission(state_after(REQUESTED_ONLY, ADMITTED), Lane("b1")) == []
    [queued] = decide_admission(requested, Lane("other", ("x", "b1")))
    assert isinstance(queued, ev.BackupQueued) and (queued.position, queued.behind) == (2, "other")
    waiting = state_after(REQUESTED_ONLY, queued)
    assert waiting.state == "Queued" and "position 2" in (waiting.message or "")
    assert decide_admission(waiting, Lane("other", ("x", "b1"))) == []  # its place is recorded once
    assert types(decide_admission(waiting, Lane("b1"))) == ["BackupAdmitted"]
    assert state_after(REQUESTED_ONLY, queued, ADMITTED).state == "Pending"
    # A lane read before a concurrent leave still shows an admitted backup queued: nothing to record.
    assert decide_admission(state_after(REQUESTED_ONLY, ADMITTED), Lane("other", ("b1",))) == []
