"""A backup's state as a pure fold over its events: ``evolve(state, event, at) -> state``.

The state a user sees keeps the original names (Pending, SnapshotInProgress, ExportInProgress,
TransferInProgress, GeneratingMetadata, Succeeded, Failed) plus Rejected and Queued (waiting for the active
backup of the same project+environment), and each branch shows its own state. While both branches run, the database phase is shown (it is the longer one on every cloud); the
document library's own state is always in ``documentLibrary.state``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import singledispatch
from typing import Literal

from pydantic import Field

from lc2backup.domain import events as ev
from lc2backup.domain.spec import BackupRequestSpec, Problem
from lc2backup.domain.wire import DomainEvent, RecordedEvent, WireModel

Phase = Literal[
    "Pending",
    "Queued",
    "SnapshotInProgress",
    "ExportInProgress",
    "TransferInProgress",
    "GeneratingMetadata",
    "Succeeded",
    "Failed",
    "Rejected",
]
TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed", "Rejected"})
DatabasePhase = Literal["Pending", "SnapshotInProgress", "ExportInProgress", "Completed", "Failed", "Cancelled"]
TransferPhase = Literal["Pending", "TransferInProgress", "Completed", "Failed", "Cancelled"]
BRANCH_ENDED: frozenset[str] = frozenset({"Completed", "Failed", "Cancelled"})  # a branch that does no more work


class SnapshotInfo(WireModel):
    snapshot_id: str
    operation: str | None = Field(default=None, exclude=True)  # the provider's poll handle, not for display
    status: Literal["creating", "available", "error"] = "creating"
    location: str | None = None
    size_bytes: int | None = None


class ExportInfo(WireModel):
    operation_id: str
    operation: str | None = Field(default=None, exclude=True)  # the provider's poll handle, not for display
    status: Literal["running", "succeeded", "failed", "cancelled"] = "running"
    location: str
    format: str
    restorable: bool
    size_bytes: int | None = None
    sha256: str | None = None
    bytes_written: int | None = None
    estimated_total_bytes: int | None = None
    percent: int | None = None
    extracted_gb: float | None = None


class DatabaseBranch(WireModel):
    state: DatabasePhase = "Pending"
    snapshot: SnapshotInfo | None = None
    export: ExportInfo | None = None
    engine: str | None = None
    engine_version: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failure: str | None = None
    cancellation: str | None = None
    progress_reports: int = 0


class TransferInfo(WireModel):
    job_id: str
    status: Literal["running", "succeeded", "failed", "cancelled"] = "running"
    method: str
    source: str
    destination: str
    exclude_generated_files: bool
    excluded_prefixes: list[str] = Field(default_factory=list)
    manifest_location: str | None = None


class DocumentLibraryBranch(WireModel):
    state: TransferPhase = "Pending"
    transfer: TransferInfo | None = None
    counters: ev.TransferCounters = ev.TransferCounters()
    position: ev.TransferPosition | None = None
    attempt: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failure: str | None = None
    cancellation: str | None = None
    progress_reports: int = 0


class BackupState(WireModel):
    backup_id: str
    state: Phase = "Pending"
    exists: bool = False
    spec: BackupRequestSpec | None = None
    source: ev.RequestSource | None = None
    problems: list[Problem] = Field(default_factory=list)
    admitted: bool = False
    admitted_at: datetime | None = None
    queue_position: int | None = None
    queued_behind: str | None = None
    project_id: str | None = None
    environment: str | None = None
    database: DatabaseBranch = DatabaseBranch()
    document_library: DocumentLibraryBranch = DocumentLibraryBranch()
    metadata_location: str | None = None
    metadata_sha256: str | None = None
    message: str | None = None
    failed_branch: str | None = None
    leftovers: list[str] = Field(default_factory=list)
    requested_at: datetime | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0
    event_count: int = 0

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def initial(backup_id: str) -> BackupState:
    return BackupState(backup_id=backup_id)


def _overall(s: BackupState) -> Phase:
    if s.state in TERMINAL:
        return s.state
    db, dl = s.database.state, s.document_library.state
    if db == "Completed" and dl == "Completed":
        return "GeneratingMetadata"
    if db in ("SnapshotInProgress", "ExportInProgress"):
        return db
    if dl == "TransferInProgress":
        return "TransferInProgress"
    return "Queued" if s.queue_position is not None and not s.admitted else "Pending"


def _started(s: BackupState, at: datetime) -> datetime:
    return s.start_time or at


def _db(s: BackupState, at: datetime, **changes: object) -> BackupState:
    return s.model_copy(update={"database": s.database.model_copy(update=changes), "start_time": _started(s, at)})


def _dl(s: BackupState, at: datetime, **changes: object) -> BackupState:
    branch = s.document_library.model_copy(update=changes)
    return s.model_copy(update={"document_library": branch, "start_time": _started(s, at)})


@singledispatch
def _apply(e: DomainEvent, s: BackupState, at: datetime) -> BackupState:
    return s  # an event this fold does not interpret (never raises: old logs must keep folding)


@_apply.register
def _(e: ev.BackupRequested, s: BackupState, at: datetime) -> BackupState:
    return s.model_copy(
        update={
            "exists": True,
            "spec": e.spec,
            "source": e.source,
            "project_id": e.spec.project_id,
            "environment": e.spec.environment,
            "requested_at": at,
            "message": "Backup requested",
        }
    )


@_apply.register
def _(e: ev.BackupRejected, s: BackupState, at: datetime) -> BackupState:
    reasons = "; ".join(f"{p.field}: {p.message}" for p in e.problems)
    return s.model_copy(
        update={
            "exists": True,
            "state": "Rejected",
            "problems": e.problems,
            "source": e.source,
            "project_id": e.project_id,
            "environment": e.environment,
            "requested_at": at,
            "completion_time": at,
            "message": f"Rejected: {reasons}",
        }
    )


@_apply.register
def _(e: ev.BackupQueued, s: BackupState, at: datetime) -> BackupState:
    return s.model_copy(update={"queue_position": e.position, "queued_behind": e.behind})


@_apply.register
def _(e: ev.BackupAdmitted, s: BackupState, at: datetime) -> BackupState:
    return s.model_copy(update={"admitted": True, "admitted_at": s.admitted_at or at})


@_apply.register
def _(e: ev.DatabaseSnapshotStarted, s: BackupState, at: datetime) -> BackupState:
    snapshot = SnapshotInfo(snapshot_id=e.snapshot_id, operation=e.operation)
    return _db(s, at, state="SnapshotInProgress", snapshot=snapshot, started_at=s.database.started_at or at)


@_apply.register
def _(e: ev.DatabaseSnapshotCompleted, s: BackupState, at: datetime) -> BackupState:
    snapshot = SnapshotInfo(snapshot_id=e.snapshot_id, status="available", location=e.location, size_bytes=e.size_bytes)
    return _db(
        s,
        at,
        snapshot=snapshot,
        engine=e.engine or s.database.engine,
        engine_version=e.engine_version or s.database.engine_version,
    )


@_apply.register
def _(e: ev.DatabaseExportStarted, s: BackupState, at: datetime) -> BackupState:
    export = ExportInfo(
        operation_id=e.operation_id,
        operation=e.operation,
        location=e.location,
        format=e.format,
        restorable=e.restorable,
    )
    return _db(s, at, state="ExportInProgress", export=export, started_at=s.database.started_at or at)


@_apply.register
def _(e: ev.DatabaseExportProgressed, s: BackupState, at: datetime) -> BackupState:
    if s.database.export is None:
        return s
    export = s.database.export.model_copy(
        update={
            "bytes_written": e.bytes_written,
            "estimated_total_bytes": e.estimated_total_bytes,
            "percent": e.percent,
        }
    )
    return _db(s, at, export=export, progress_reports=e.report)


@_apply.register
def _(e: ev.DatabaseExportCompleted, s: BackupState, at: datetime) -> BackupState:
    base = s.database.export
    export = ExportInfo(
        operation_id=base.operation_id if base else "",
        status="succeeded",
        location=e.location,
        format=e.format,
        restorable=e.restorable,
        size_bytes=e.size_bytes,
        sha256=e.sha256,
        bytes_written=e.size_bytes,
        percent=100,
        extracted_gb=e.extracted_gb,
    )
    return _db(
        s,
        at,
        state="Completed",
        export=export,
        completed_at=at,
        engine=e.engine or s.database.engine,
        engine_version=e.engine_version or s.database.engine_version,
    )


@_apply.register
def _(e: ev.DatabaseBranchFailed, s: BackupState, at: datetime) -> BackupState:
    db = s.database
    snapshot = db.snapshot
    if snapshot is not None and e.step == "snapshot":
        snapshot = snapshot.model_copy(update={"status": "error"})
    export = db.export
    if export is not None and e.step == "export":
        export = export.model_copy(update={"status": "failed"})
    return _db(
        s, at, state="Failed", failure=f"{e.step}: {e.reason}", snapshot=snapshot, export=export, completed_at=at
    )


@_apply.register
def _(e: ev.DatabaseBranchCancelled, s: BackupState, at: datetime) -> BackupState:
    db = s.database
    if db.state in BRANCH_ENDED:
        return s
    export = db.export
    if export is not None and export.status == "running":
        export = export.model_copy(update={"status": "cancelled"})
    return _db(s, at, state="Cancelled", cancellation=e.reason, export=export, completed_at=at)


@_apply.register
def _(e: ev.DocumentLibraryTransferStarted, s: BackupState, at: datetime) -> BackupState:
    transfer = TransferInfo(
        job_id=e.job_id,
        method=e.method,
        source=e.source,
        destination=e.destination,
        exclude_generated_files=e.exclude_generated_files,
        excluded_prefixes=e.excluded_prefixes,
    )
    return _dl(s, at, state="TransferInProgress", transfer=transfer, started_at=s.document_library.started_at or at)


@_apply.register
def _(e: ev.DocumentLibraryTransferProgressed, s: BackupState, at: datetime) -> BackupState:
    position = e.position or s.document_library.position
    return _dl(s, at, counters=e.counters, position=position, attempt=e.attempt, progress_reports=e.report)


@_apply.register
def _(e: ev.DocumentLibraryTransferCompleted, s: BackupState, at: datetime) -> BackupState:
    transfer = s.document_library.transfer
    if transfer is not None:
        transfer = transfer.model_copy(update={"status": "succeeded", "manifest_location": e.manifest_location})
    return _dl(s, at, state="Completed", counters=e.counters, transfer=transfer, completed_at=at)


@_apply.register
def _(e: ev.DocumentLibraryTransferFailed, s: BackupState, at: datetime) -> BackupState:
    transfer = s.document_library.transfer
    if transfer is not None:
        transfer = transfer.model_copy(update={"status": "failed"})
    return _dl(s, at, state="Failed", failure=e.reason, transfer=transfer, completed_at=at)


@_apply.register
def _(e: ev.DocumentLibraryTransferCancelled, s: BackupState, at: datetime) -> BackupState:
    dl = s.document_library
    if dl.state in BRANCH_ENDED:
        return s
    transfer = dl.transfer
    if transfer is not None and transfer.status == "running":
        transfer = transfer.model_copy(update={"status": "cancelled"})
    return _dl(s, at, state="Cancelled", cancellation=e.reason, transfer=transfer, completed_at=at)


@_apply.register
def _(e: ev.BackupMetadataWritten, s: BackupState, at: datetime) -> BackupState:
    return s.model_copy(update={"metadata_location": e.location, "metadata_sha256": e.sha256})


@_apply.register
def _(e: ev.BackupSucceeded, s: BackupState, at: datetime) -> BackupState:
    return s.model_copy(
        update={
            "state": "Succeeded",
            "metadata_location": e.metadata_location,
            "completion_time": at,
            "message": "Backup succeeded",
        }
    )


@_apply.register
def _(e: ev.BackupFailed, s: BackupState, at: datetime) -> BackupState:
    return s.model_copy(
        update={
            "state": "Failed",
            "failed_branch": e.branch,
            "leftovers": e.leftovers,
            "completion_time": at,
            "message": f"Backup failed ({e.branch}): {e.reason}",
        }
    )


def evolve(state: BackupState, event: DomainEvent, at: datetime, version: int = 0) -> BackupState:
    """Apply one event. Events after a terminal state are recorded (version, count) but change nothing else."""
    nxt = state if state.terminal else _apply(event, state, at)
    update: dict[str, object] = {
        "version": max(version, state.version),
        "event_count": state.event_count + 1,
        "updated_at": at,
    }
    if not nxt.terminal:  # one copy per event: the fold is most of a projection rebuild (benchmark B3)
        overall = _overall(nxt)
        update |= {"state": overall, "message": _progress_message(nxt, overall)}
    return nxt.model_copy(update=update)


def _progress_message(s: BackupState, overall: Phase) -> str | None:
    if s.database.state == "Failed" or s.document_library.state == "Failed":
        failed = "database" if s.database.state == "Failed" else "document library"
        return f"The {failed} branch failed; failing the backup"
    if overall == "Queued":
        return f"Queued behind backup {s.queued_behind} (position {s.queue_position} when queued)"
    return {
        "Pending": "Backup requested" if not s.admitted else "Backup admitted: starting",
        "SnapshotInProgress": "Taking the database snapshot",
        "ExportInProgress": "Exporting the database",
        "TransferInProgress": "Copying the document library",
        "GeneratingMetadata": "Writing metadata.json",
    }.get(overall, s.message)


def fold(backup_id: str, events: Iterable[RecordedEvent], state: BackupState | None = None) -> BackupState:
    """The state after ``events``, folded from the start or onto ``state``, a fold of the events before them."""
    state = initial(backup_id) if state is None else state
    for recorded in events:
        state = evolve(state, recorded.event, recorded.envelope.occurred_at, recorded.sequence)
    return state
