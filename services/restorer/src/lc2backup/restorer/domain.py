"""A restore's decisions, pure: each ``record_*`` returns the event(s) that record an outcome, or nothing when
the restore has already moved on (a redelivery, or a lost race, decides nothing)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from lc2backup.domain.events import (
    DatabaseRestoreCompleted,
    DatabaseRestoreFailed,
    DatabaseRestoreProgressed,
    DatabaseRestoreStarted,
    DocumentLibraryRestoreCompleted,
    DocumentLibraryRestoreFailed,
    DocumentLibraryRestoreProgressed,
    DocumentLibraryRestoreStarted,
    RequestSource,
    RestoreAdmitted,
    RestoreFailed,
    RestoreRejected,
    RestoreRequested,
    RestoreSucceeded,
    RestoreValidated,
    ScratchRemoved,
    VerificationFailed,
    VerificationSucceeded,
    VerificationSummary,
)
from lc2backup.domain.restore_state import RestoreState
from lc2backup.domain.restoring import RestorePlan, RestoreRequestSpec
from lc2backup.domain.spec import Problem
from lc2backup.domain.wire import DomainEvent

Branch = Literal["database", "document_library"]


def decide_intake(
    state: RestoreState, spec: RestoreRequestSpec | None, source: RequestSource, outcome: RestorePlan | list[Problem]
) -> list[DomainEvent]:
    """The restore's first events: requested and admitted, or rejected with every problem. Once only."""
    if state.exists:
        return []
    if isinstance(outcome, list):
        requested = [RestoreRequested(spec=spec, source=source)] if spec is not None else []
        return [*requested, RestoreRejected(problems=outcome)]
    assert spec is not None
    return [RestoreRequested(spec=spec, source=source, plan=outcome), RestoreAdmitted()]


def record_validation(state: RestoreState, problems: list[str], checks: list[str]) -> list[DomainEvent]:
    if state.state != "Validating":
        return []
    if problems:
        return [RestoreRejected(problems=[Problem(field="targets", message=p, type="validation") for p in problems])]
    return [RestoreValidated(checks=checks)]


def _running(state: RestoreState, branch: Branch) -> bool:
    return state.state == "Restoring" and getattr(state, branch).state == "InProgress"


def record_started(
    state: RestoreState, event: DatabaseRestoreStarted | DocumentLibraryRestoreStarted
) -> list[DomainEvent]:
    branch: Branch = "database" if isinstance(event, DatabaseRestoreStarted) else "document_library"
    if state.state != "Restoring" or getattr(state, branch).state != "Pending":
        return []
    return [event]


def record_progress(state: RestoreState, branch: Branch, done: int, done_bytes: int) -> list[DomainEvent]:
    current = getattr(state, branch)
    if not _running(state, branch) or current.done == done:
        return []
    report = current.reports + 1
    if branch == "database":
        return [DatabaseRestoreProgressed(report=report, bytes_done=done_bytes)]
    return [DocumentLibraryRestoreProgressed(report=report, objects_done=done, bytes_done=done_bytes)]


def record_completed(
    state: RestoreState, event: DatabaseRestoreCompleted | DocumentLibraryRestoreCompleted
) -> list[DomainEvent]:
    branch: Branch = "database" if isinstance(event, DatabaseRestoreCompleted) else "document_library"
    return [event] if _running(state, branch) else []


def overdue(state: RestoreState, now: datetime, deadline: timedelta) -> str | None:
    """Why the restore must fail now, when it has run past its deadline (counted from its request)."""
    if state.terminal or state.requested_at is None or now - state.requested_at <= deadline:
        return None
    return f"the restore did not finish within {deadline} (LC2_DEADLINE_HOURS of the restorer)"


def record_branch_failure(state: RestoreState, branch: Branch, reason: str) -> list[DomainEvent]:
    if state.terminal or getattr(state, branch).ended:
        return []
    if branch == "database":
        return [DatabaseRestoreFailed(reason=reason)]
    return [DocumentLibraryRestoreFailed(reason=reason)]


def record_verdict(
    state: RestoreState, summary: VerificationSummary, findings: list[str], checks: list[str]
) -> list[DomainEvent]:
    if state.state != "Verifying" or state.verification is not None:
        return []
    if findings:
        return [VerificationFailed(summary=summary, findings=findings)]
    return [VerificationSucceeded(summary=summary, checks=checks)]


def record_scratch_removed(state: RestoreState, removed: list[str]) -> list[DomainEvent]:
    """A passed verification's scratch, before it ends; a failed one's once it was kept its time (after the end)."""
    if not state.verifying or state.scratch_removed is not None or (state.terminal and state.state != "Failed"):
        return []
    return [ScratchRemoved(removed=removed)]


def scratch_kept_until(state: RestoreState) -> datetime | None:
    """When a failed verification's scratch targets are to be removed; None: nothing is kept (or already gone)."""
    if not (state.verifying and state.state == "Failed" and state.scratch_removed is None and state.plan):
        return None
    ended = state.completion_time or state.updated_at
    return ended + timedelta(hours=state.plan.keep_failed_hours) if ended else None


def leftovers(state: RestoreState) -> list[str]:
    """What the restore wrote: its targets, where a branch started."""
    return [branch.target for branch in (state.database, state.document_library) if branch.target and branch.started_at]


def decide_outcome(state: RestoreState) -> list[DomainEvent]:
    """The end, once it is known: a failed branch or verification fails the restore (no partial success)."""
    if state.terminal:
        return []
    reasons = {
        name: branch.failure or "failed"
        for name, branch in (("database", state.database), ("documentLibrary", state.document_library))
        if branch.state == "Failed"
    }
    if reasons:
        return [RestoreFailed(reasons=reasons, leftovers=leftovers(state))]
    if state.state in ("Pending", "Validating"):
        return []
    if not state.branches_ended:
        return []
    if state.verifying:
        verdict = state.verification
        if verdict is None:
            return []
        if not verdict.passed:
            kept = f"scratch targets kept for {state.plan.keep_failed_hours if state.plan else 24} h"
            return [
                RestoreFailed(
                    reasons={"verification": "; ".join(verdict.findings[:10]) + f" ({kept})"},
                    leftovers=leftovers(state),
                )
            ]
        if state.scratch_removed is None:
            return []
    return [RestoreSucceeded()]
