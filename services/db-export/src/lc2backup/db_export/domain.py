"""The database branch as pure decisions over the backup's state.

``next_step`` says what the branch needs now; each ``record_*`` returns the event(s) that record an
outcome, or nothing when the state has already moved on (so a redelivery or a lost race decides nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from lc2backup.domain import BRANCH_ENDED, BackupState
from lc2backup.domain.events import (
    DatabaseBranchFailed,
    DatabaseExportCompleted,
    DatabaseExportProgressed,
    DatabaseExportStarted,
    DatabaseSnapshotCompleted,
    DatabaseSnapshotStarted,
)
from lc2backup.domain.wire import DomainEvent

StepKind = Literal["start_snapshot", "check_snapshot", "start_export", "check_export", "finished", "timed_out"]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    reason: str = ""


def next_step(state: BackupState, now: datetime, deadline: timedelta) -> Step:
    db = state.database
    if state.terminal or not state.admitted or state.spec is None or db.state in BRANCH_ENDED:
        return Step("finished")
    since = db.started_at or state.admitted_at  # a branch that cannot even start is bounded too
    if since is not None and now - since > deadline:
        if db.state == "Pending":
            step = "snapshot" if state.spec.database.type == "snapshot" else "export"
            return Step("timed_out", f"{step} could not be started within {deadline}")
        step = "snapshot" if db.state == "SnapshotInProgress" else "export"
        return Step("timed_out", f"{step} did not finish within {deadline}")
    if db.state == "Pending":
        return Step("start_snapshot" if state.spec.database.type == "snapshot" else "start_export")
    if db.state == "SnapshotInProgress":
        if db.snapshot is not None and db.snapshot.status == "available":
            return Step("start_export")
        return Step("check_snapshot")
    return Step("check_export")


def _open(state: BackupState) -> bool:
    return state.exists and not state.terminal and state.database.state not in BRANCH_ENDED


def record_snapshot_started(state: BackupState, started: DatabaseSnapshotStarted) -> list[DomainEvent]:
    if not _open(state) or state.database.state != "Pending":
        return []
    return [started]


def record_snapshot_completed(state: BackupState, event: DatabaseSnapshotCompleted) -> list[DomainEvent]:
    snap = state.database.snapshot
    if not _open(state) or state.database.state != "SnapshotInProgress" or snap is None or snap.status != "creating":
        return []
    return [event]


def record_export_started(state: BackupState, event: DatabaseExportStarted) -> list[DomainEvent]:
    if not _open(state) or state.database.export is not None:
        return []
    if state.database.state == "SnapshotInProgress" and (
        state.database.snapshot is None or state.database.snapshot.status != "available"
    ):
        return []
    return [event]


def record_export_progress(
    state: BackupState, bytes_written: int | None, estimated_total: int | None, percent: int | None
) -> list[DomainEvent]:
    export = state.database.export
    if not _open(state) or export is None:
        return []
    if (export.bytes_written, export.percent) == (bytes_written, percent):
        return []  # nothing new to tell
    return [
        DatabaseExportProgressed(
            report=state.database.progress_reports + 1,
            bytes_written=bytes_written,
            estimated_total_bytes=estimated_total,
            percent=percent,
        )
    ]


def record_export_completed(state: BackupState, event: DatabaseExportCompleted) -> list[DomainEvent]:
    if not _open(state) or state.database.state != "ExportInProgress":
        return []
    return [event]


def record_failure(state: BackupState, step: Literal["snapshot", "export"], reason: str) -> list[DomainEvent]:
    if not _open(state):
        return []
    return [DatabaseBranchFailed(step=step, reason=reason)]


def failing_step(state: BackupState) -> Literal["snapshot", "export"]:
    """The step a failure belongs to: the snapshot until it is available, the export after."""
    db = state.database
    wants_snapshot = state.spec is not None and state.spec.database.type == "snapshot"
    snapshot_done = db.snapshot is not None and db.snapshot.status == "available"
    return "snapshot" if wants_snapshot and not snapshot_done and db.export is None else "export"
