"""The fold: plain unit tests, no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lc2backup.domain import BackupState, fold, parse_spec
from lc2backup.domain import events as ev
from lc2backup.domain.wire import DomainEvent, Envelope, RecordedEvent, event_id

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPEC = parse_spec(
    {
        "projectId": "retail",
        "environment": "prd",
        "provider": "local",
        "database": {"type": "dump", "instanceId": "db1", "databaseName": "lportal"},
        "documentLibrary": {"sourceBucket": "liferay-dl", "destinationBucket": "lc2-backups"},
    }
)
SOURCE = ev.RequestSource(kind="nats", command_id="c1")
COUNTERS = ev.TransferCounters(
    objects_found=10, objects_copied=8, bytes_copied=800, objects_excluded=2, bytes_excluded=20, listing_complete=True
)


def recorded(events: list[DomainEvent], backup_id: str = "b1") -> list[RecordedEvent]:
    out = []
    for seq, event in enumerate(events, start=1):
        envelope = Envelope(
            id=event_id(backup_id, event.dedupe_key()),
            type=event.event_type,
            schema_version=event.schema_version,
            backup_id=backup_id,
            occurred_at=T0 + timedelta(seconds=seq),
            correlation_id="c1",
            producer="test",
            data=event.model_dump(mode="json", by_alias=True),
        )
        out.append(RecordedEvent(envelope, event, seq))
    return out


def state_after(*events: DomainEvent) -> BackupState:
    return fold("b1", recorded(list(events)))


def test_nothing_yet_is_pending_and_does_not_exist() -> None:
    s = state_after()
    assert s.state == "Pending" and not s.exists and s.version == 0


def test_requested_backup_is_pending_with_both_branches_pending() -> None:
    s = state_after(ev.BackupRequested(spec=SPEC, source=SOURCE))
    assert (s.state, s.database.state, s.document_library.state) == ("Pending", "Pending", "Pending")
    assert s.exists and s.project_id == "retail" and s.requested_at == T0 + timedelta(seconds=1)


def test_database_phase_is_shown_while_both_branches_run() -> None:
    s = state_after(
        ev.BackupRequested(spec=SPEC, source=SOURCE),
        ev.DocumentLibraryTransferStarted(
            job_id="j", method="m", source="s3://a/", destination="s3://b/", exclude_generated_files=True
        ),
        ev.DatabaseExportStarted(
            operation_id="op", location="s3://b/x.dump", format="postgresql-custom", restorable=True
        ),
    )
    assert s.state == "ExportInProgress"
    assert s.document_library.state == "TransferInProgress"
    assert s.start_time == T0 + timedelta(seconds=2)


def test_snapshot_then_export_then_transfer_phases() -> None:
    base: list[DomainEvent] = [
        ev.BackupRequested(spec=SPEC, source=SOURCE),
        ev.DatabaseSnapshotStarted(snapshot_id="snap", instance_id="db1"),
    ]
    assert state_after(*base).state == "SnapshotInProgress"
    base.append(ev.DatabaseSnapshotCompleted(snapshot_id="snap", size_bytes=5, engine="postgres"))
    s = state_after(*base)
    assert s.database.snapshot is not None and s.database.snapshot.status == "available"
    base += [
        ev.DatabaseExportStarted(operation_id="op", location="s3://b/e", format="parquet", restorable=False),
        ev.DocumentLibraryTransferStarted(
            job_id="j", method="m", source="s", destination="d", exclude_generated_files=False
        ),
        ev.DatabaseExportCompleted(location="s3://b/e", format="parquet", restorable=False, size_bytes=9),
    ]
    s = state_after(*base)
    assert (s.state, s.database.state) == ("TransferInProgress", "Completed")
    assert s.database.engine == "postgres"


def test_both_branches_done_means_generating_metadata_then_succeeded() -> None:
    events: list[DomainEvent] = [
        ev.BackupRequested(spec=SPEC, source=SOURCE),
        ev.DatabaseExportStarted(operation_id="op", location="s3://b/e", format="f", restorable=True),
        ev.DocumentLibraryTransferStarted(
            job_id="j", method="m", source="s", destination="d", exclude_generated_files=True
        ),
        ev.DocumentLibraryTransferProgressed(report=1, counters=COUNTERS),
        ev.DatabaseExportCompleted(location="s3://b/e", format="f", restorable=True, size_bytes=9, sha256="ab" * 32),
        ev.DocumentLibraryTransferCompleted(counters=COUNTERS, manifest_location="s3://b/m"),
    ]
    s = state_after(*events)
    assert s.state == "GeneratingMetadata" and s.document_library.counters == COUNTERS
    s = state_after(
        *events,
        ev.BackupMetadataWritten(location="s3://b/meta", size_bytes=3, sha256="cd" * 32),
        ev.BackupSucceeded(metadata_location="s3://b/meta"),
    )
    assert s.state == "Succeeded" and s.terminal and s.metadata_location == "s3://b/meta"
    assert s.completion_time == T0 + timedelta(seconds=8)
    assert s.version == 8 and s.event_count == 8


def test_a_failed_branch_is_visible_before_the_backup_fails() -> None:
    events: list[DomainEvent] = [
        ev.BackupRequested(spec=SPEC, source=SOURCE),
        ev.DatabaseExportStarted(operation_id="op", location="s3://b/e", format="f", restorable=True),
        ev.DatabaseBranchFailed(step="export", reason="pg_dump exited 1"),
    ]
    s = state_after(*events)
    assert s.database.state == "Failed" and s.state != "Failed"
    assert s.database.export is not None and s.database.export.status == "failed"
    assert "database branch failed" in (s.message or "")
    s = state_after(*events, ev.BackupFailed(branch="database", reason="export: pg_dump exited 1"))
    assert s.state == "Failed" and s.failed_branch == "database" and "pg_dump exited 1" in (s.message or "")


def test_a_cancelled_branch_shows_why_and_the_failure_what_was_left() -> None:
    events: list[DomainEvent] = [
        ev.BackupRequested(spec=SPEC, source=SOURCE),
        ev.BackupAdmitted(),
        ev.DocumentLibraryTransferStarted(
            job_id="j", method="m", source="s", destination="d", exclude_generated_files=True
        ),
        ev.DocumentLibraryTransferProgressed(report=1, counters=COUNTERS),
        ev.DatabaseBranchFailed(step="export", reason="database lportal does not exist"),
        ev.DocumentLibraryTransferCancelled(reason="the database branch failed"),
    ]
    s = state_after(*events)
    dl = s.document_library
    assert dl.state == "Cancelled" and dl.cancellation == "the database branch failed" and dl.completed_at is not None
    assert dl.transfer is not None and dl.transfer.status == "cancelled" and dl.counters == COUNTERS
    assert s.state != "Failed"
    s = state_after(*events, ev.BackupFailed(branch="database", reason="x", leftovers=["s3://lc2-backups/b1/"]))
    assert s.state == "Failed" and s.leftovers == ["s3://lc2-backups/b1/"] and s.document_library.state == "Cancelled"
    # a branch that already ended is not cancelled afterwards
    done = state_after(
        ev.BackupRequested(spec=SPEC, source=SOURCE),
        ev.DatabaseExportStarted(operation_id="op", location="s3://b/e", format="f", restorable=True),
        ev.DatabaseExportCompleted(location="s3://b/e", format="f", restorable=True),
        ev.DatabaseBranchCancelled(reason="late"),
    )
    assert done.database.state == "Completed" and done.database.cancellation is None


def test_events_after_a_terminal_state_change_nothing_but_the_version() -> None:
    done = state_after(ev.BackupRequested(spec=SPEC, source=SOURCE), ev.BackupFailed(branch="backup", reason="x"))
    later = state_after(
        ev.BackupRequested(spec=SPEC, source=SOURCE),
        ev.BackupFailed(branch="backup", reason="x"),
        ev.DocumentLibraryTransferFailed(reason="late"),
    )
    assert later.state == "Failed" and later.document_library == done.document_library
    assert later.version == 3


def test_rejected_lists_every_problem() -> None:
    from lc2backup.domain import Problem

    problems = [Problem(field="spec.provider", message="bad"), Problem(field="spec.projectId", message="worse")]
    s = state_after(ev.BackupRejected(problems=problems, source=SOURCE))
    assert s.state == "Rejected" and s.terminal and s.problems == problems
    assert "spec.provider: bad" in (s.message or "") and "spec.projectId: worse" in (s.message or "")


def test_fold_is_deterministic_and_serialisable() -> None:
    events = recorded(
        [
            ev.BackupRequested(spec=SPEC, source=SOURCE),
            ev.DocumentLibraryTransferProgressed(report=1, counters=COUNTERS),
        ]
    )
    a, b = fold("b1", events), fold("b1", events)
    assert a == b
    assert BackupState.model_validate_json(a.model_dump_json(by_alias=True)) == a
