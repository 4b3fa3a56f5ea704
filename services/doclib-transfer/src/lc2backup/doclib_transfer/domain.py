"""The document-library branch as pure decisions over the backup's state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from lc2backup.domain import BRANCH_ENDED, BackupState, TransferCounters, TransferPosition
from lc2backup.domain.events import (
    DocumentLibraryTransferCompleted,
    DocumentLibraryTransferFailed,
    DocumentLibraryTransferProgressed,
    DocumentLibraryTransferStarted,
)
from lc2backup.domain.wire import DomainEvent

StepKind = Literal["start", "check", "finished", "timed_out"]


def next_step(state: BackupState, now: datetime, deadline: timedelta) -> tuple[StepKind, str]:
    dl = state.document_library
    if state.terminal or not state.admitted or state.spec is None or dl.state in BRANCH_ENDED:
        return "finished", ""
    since = dl.started_at or state.admitted_at  # a transfer that cannot even start is bounded too
    if since is not None and now - since > deadline:
        if dl.state == "Pending":
            return "timed_out", f"transfer could not be started within {deadline}"
        return "timed_out", f"transfer did not finish within {deadline}"
    return ("start", "") if dl.state == "Pending" else ("check", "")


def _running(state: BackupState) -> bool:
    return not state.terminal and state.document_library.state == "TransferInProgress"


def record_started(state: BackupState, event: DocumentLibraryTransferStarted) -> list[DomainEvent]:
    if state.terminal or state.document_library.state != "Pending":
        return []
    return [event]


def record_progress(
    state: BackupState, counters: TransferCounters, attempt: int, position: TransferPosition | None = None
) -> list[DomainEvent]:
    dl = state.document_library
    # a managed job (no position) reports only when its counters moved; our copier also at each new slice
    unchanged = dl.counters == counters and (position is None or (dl.attempt == attempt and dl.position == position))
    if not _running(state) or unchanged:
        return []
    return [
        DocumentLibraryTransferProgressed(
            report=dl.progress_reports + 1, attempt=attempt, counters=counters, position=position
        )
    ]


def record_completed(state: BackupState, counters: TransferCounters, manifest: str | None) -> list[DomainEvent]:
    if not _running(state):
        return []
    return [DocumentLibraryTransferCompleted(counters=counters, manifest_location=manifest)]


def record_failure(state: BackupState, reason: str) -> list[DomainEvent]:
    if not state.exists or state.terminal or state.document_library.state in BRANCH_ENDED:
        return []
    return [DocumentLibraryTransferFailed(reason=reason)]
