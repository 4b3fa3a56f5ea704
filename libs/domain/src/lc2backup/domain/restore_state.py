"""A restore's state as a pure fold over its events, like a backup's (``lc2backup.domain.state``).

Phases: Pending → Validating → (Rejected) → Restoring → (Verifying) → Succeeded | Failed. The database and
document-library branches run in parallel, each with its own state and progress; any failed branch fails the
restore (no partial success). A verification's verdict is recorded before the restore ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import singledispatch
from typing import Literal

from pydantic import Field

from lc2backup.domain import events as ev
from lc2backup.domain.restoring import RestorePlan, RestoreRequestSpec
from lc2backup.domain.spec import Problem
from lc2backup.domain.wire import DomainEvent, RecordedEvent, WireModel

RestorePhase = Literal["Pending", "Validating", "Restoring", "Verifying", "Succeeded", "Failed", "Rejected"]
RESTORE_TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed", "Rejected"})
RestoreBranchPhase = Literal["Pending", "InProgress", "Completed", "Failed", "Skipped"]


class RestoreBranch(WireModel):
    state: RestoreBranchPhase = "Pending"
    target: str | None = None
    operation_id: str | None = None
    done: int | None = Field(default=None, description="bytes (database) or objects (document library) done")
    total: int | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    reports: int = 0
    failure: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.state in ("Completed", "Failed", "Skipped")


class Verification(WireModel):
    passed: bool
    summary: ev.VerificationSummary
    findings: list[str] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list)
    at: datetime


class RestoreState(WireModel):
    restore_id: str
    state: RestorePhase = "Pending"
    exists: bool = False
    spec: RestoreRequestSpec | None = None
    source: ev.RequestSource | None = None
    plan: RestorePlan | None = None
    problems: list[Problem] = Field(default_factory=list)
    database: RestoreBranch = RestoreBranch()
    document_library: RestoreBranch = RestoreBranch()
    verification: Verification | None = None
    scratch_removed: list[str] | None = None
    reasons: dict[str, str] = Field(default_factory=dict)
    leftovers: list[str] = Field(default_factory=list)
    message: str | None = None
    requested_at: datetime | None = None
    completion_time: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0
    event_count: int = 0

    @property
    def terminal(self) -> bool:
        return self.state in RESTORE_TERMINAL

    @property
    def backup_id(self) -> str | None:
        return self.spec.backup_id if self.spec is not None else None

    @property
    def branches_ended(self) -> bool:
        return self.database.ended and self.document_library.ended

    @property
    def verifying(self) -> bool:
        return self.plan is not None and self.plan.purpose == "verification"


def initial_restore(restore_id: str) -> RestoreState:
    return RestoreState(restore_id=restore_id)


def _branch(s: RestoreState, name: Literal["database", "document_library"], **changes: object) -> RestoreState:
    return s.model_copy(update={name: getattr(s, name).model_copy(update=changes)})


@singledispatch
def _apply(e: DomainEvent, s: RestoreState, at: datetime) -> RestoreState:
    return s  # a backup's event, or one this fold does not interpret


@_apply.register
def _(e: ev.RestoreRequested, s: RestoreState, at: datetime) -> RestoreState:
    plan = e.plan
    return s.model_copy(
        update={
            "exists": True,
            "spec": e.spec,
            "source": e.source,
            "plan": plan,
            "requested_at": at,
            "database": s.database if plan is None or plan.database else RestoreBranch(state="Skipped"),
            "document_library": (
                s.document_library if plan is None or plan.document_library else RestoreBranch(state="Skipped")
            ),
        }
    )


@_apply.register
def _(e: ev.RestoreRejected, s: RestoreState, at: datetime) -> RestoreState:
    reasons = "; ".join(f"{p.field}: {p.message}" for p in e.problems)
    return s.model_copy(
        update={"state": "Rejected", "problems": e.problems, "completion_time": at, "message": f"Rejected: {reasons}"}
    )


@_apply.register
def _(e: ev.RestoreAdmitted, s: RestoreState, at: datetime) -> RestoreState:
    return s.model_copy(update={"state": "Validating"})


@_apply.register
def _(e: ev.RestoreValidated, s: RestoreState, at: datetime) -> RestoreState:
    return s.model_copy(update={"state": "Restoring"})


@_apply.register
def _(e: ev.DatabaseRestoreStarted, s: RestoreState, at: datetime) -> RestoreState:
    total = s.plan.database.size_bytes if s.plan and s.plan.database else None
    return _branch(
        s, "database", state="InProgress", target=e.target, operation_id=e.operation_id, started_at=at, total=total
    )


@_apply.register
def _(e: ev.DatabaseRestoreProgressed, s: RestoreState, at: datetime) -> RestoreState:
    return _branch(
        s,
        "database",
        done=e.bytes_done,
        total=e.bytes_total if e.bytes_total is not None else s.database.total,
        bytes_done=e.bytes_done,
        bytes_total=e.bytes_total if e.bytes_total is not None else s.database.total,
        reports=e.report,
    )


@_apply.register
def _(e: ev.DatabaseRestoreCompleted, s: RestoreState, at: datetime) -> RestoreState:
    done = e.bytes_read if e.bytes_read is not None else s.database.done
    return _branch(s, "database", state="Completed", target=e.target, done=done, bytes_done=done, completed_at=at)


@_apply.register
def _(e: ev.DatabaseRestoreFailed, s: RestoreState, at: datetime) -> RestoreState:
    return _branch(s, "database", state="Failed", failure=e.reason, completed_at=at)


@_apply.register
def _(e: ev.DocumentLibraryRestoreStarted, s: RestoreState, at: datetime) -> RestoreState:
    return _branch(
        s,
        "document_library",
        state="InProgress",
        target=e.destination,
        operation_id=e.source,
        total=e.objects_total,
        bytes_total=e.bytes_total,
        done=0,
        bytes_done=0,
        started_at=at,
    )


@_apply.register
def _(e: ev.DocumentLibraryRestoreProgressed, s: RestoreState, at: datetime) -> RestoreState:
    return _branch(s, "document_library", done=e.objects_done, bytes_done=e.bytes_done, reports=e.report)


@_apply.register
def _(e: ev.DocumentLibraryRestoreCompleted, s: RestoreState, at: datetime) -> RestoreState:
    return _branch(s, "document_library", state="Completed", done=e.objects, bytes_done=e.bytes, completed_at=at)


@_apply.register
def _(e: ev.DocumentLibraryRestoreFailed, s: RestoreState, at: datetime) -> RestoreState:
    return _branch(s, "document_library", state="Failed", failure=e.reason, completed_at=at)


@_apply.register
def _(e: ev.VerificationSucceeded, s: RestoreState, at: datetime) -> RestoreState:
    verdict = Verification(passed=True, summary=e.summary, checks=e.checks, at=at)
    return s.model_copy(update={"verification": verdict})


@_apply.register
def _(e: ev.VerificationFailed, s: RestoreState, at: datetime) -> RestoreState:
    verdict = Verification(passed=False, summary=e.summary, findings=e.findings, at=at)
    return s.model_copy(update={"verification": verdict})


@_apply.register
def _(e: ev.ScratchRemoved, s: RestoreState, at: datetime) -> RestoreState:
    return s.model_copy(update={"scratch_removed": e.removed})


@_apply.register
def _(e: ev.RestoreSucceeded, s: RestoreState, at: datetime) -> RestoreState:
    return s.model_copy(update={"state": "Succeeded", "completion_time": at})


@_apply.register
def _(e: ev.RestoreFailed, s: RestoreState, at: datetime) -> RestoreState:
    reasons = "; ".join(f"{branch}: {reason}" for branch, reason in e.reasons.items())
    return s.model_copy(
        update={
            "state": "Failed",
            "reasons": e.reasons,
            "leftovers": e.leftovers,
            "completion_time": at,
            "message": f"Restore failed ({reasons})",
        }
    )


def _phase(s: RestoreState) -> RestorePhase:
    if s.terminal or s.state in ("Pending", "Validating"):
        return s.state
    if s.branches_ended and s.verifying and s.database.state != "Failed" and s.document_library.state != "Failed":
        return "Verifying"
    return "Restoring"


def _message(s: RestoreState) -> str | None:
    if s.terminal:
        return s.message if s.state != "Succeeded" else "Restore succeeded"
    if s.database.state == "Failed" or s.document_library.state == "Failed":
        return "A branch failed; failing the restore"
    return {
        "Pending": "Restore requested",
        "Validating": "Checking metadata.json and the targets",
        "Restoring": "Restoring the database and the document library",
        "Verifying": "Comparing the restored data with what the backup recorded",
    }.get(s.state)


def evolve_restore(state: RestoreState, event: DomainEvent, at: datetime, version: int = 0) -> RestoreState:
    """Apply one event. Events after a terminal state are recorded but change nothing else, but for a failed
    verification's ``ScratchRemoved`` (its scratch targets are kept a while after the end, then removed)."""
    after_end = state.terminal and not isinstance(event, ev.ScratchRemoved)
    nxt = state if after_end else _apply(event, state, at)
    nxt = nxt.model_copy(update={"state": _phase(nxt)})
    return nxt.model_copy(
        update={
            "version": max(version, state.version),
            "event_count": state.event_count + 1,
            "updated_at": at,
            "message": _message(nxt),
        }
    )


def fold_restore(restore_id: str, events: Iterable[RecordedEvent], state: RestoreState | None = None) -> RestoreState:
    state = initial_restore(restore_id) if state is None else state
    for recorded in events:
        state = evolve_restore(state, recorded.event, recorded.envelope.occurred_at, recorded.sequence)
    return state
