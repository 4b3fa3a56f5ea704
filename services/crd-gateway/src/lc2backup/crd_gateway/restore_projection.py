"""What a RestoreRequest becomes and shows, as pure functions: its restore command, its ``.status``, its Events.

A RestoreRequest CR becomes one restore command on ``lc2.backup.cmd.restore`` for the restorer, whose intake
plans and checks it like any other: the restore id is derived from the CR's uid (one CR is one restore) and the
command's ``source`` names the CR, so the restore's events lead back to it. The status is a projection of the
restore's fold plus the CR's current ``metadata.generation`` (``observedGeneration``), like a BackupRequest's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lc2backup.crd_gateway.projection import (
    MAX_EVENT_MESSAGE,
    Json,
    Outcome,
    Transition,
    conditions,
    identity,
)
from lc2backup.crd_gateway.status_model import RestoreBranchStatus, RestoreRequestStatus, VerificationStatus
from lc2backup.domain import RequestSource
from lc2backup.domain import events as ev
from lc2backup.domain.restore_state import RestoreBranch, RestoreState
from lc2backup.domain.restoring import RequestRestore, restore_id_for_resource


def restore_command_of(resource: Mapping[str, Any]) -> RequestRestore:
    """The restore command a RestoreRequest CR becomes: its spec as the API server stored it (defaults filled),
    the restore id its uid names, and the CR as the source."""
    namespace, name, uid, generation = identity(resource)
    source = RequestSource(
        kind="kubernetes",
        command_id=f"k8s:{uid}",
        namespace=namespace,
        name=name,
        uid=uid,
        generation=generation,
    )
    return RequestRestore(restore_id=uuid.UUID(restore_id_for_resource(uid)), spec=resource.get("spec"), source=source)


def _percent(done: int | None, total: int | None) -> int | None:
    if done is None or not total:
        return None
    return min(100, done * 100 // total)


def _database(branch: RestoreBranch) -> RestoreBranchStatus:
    done = branch.bytes_done if branch.bytes_done is not None else branch.done  # the database counts bytes
    total = branch.bytes_total if branch.bytes_total is not None else branch.total
    return RestoreBranchStatus(
        state=branch.state,
        target=branch.target,
        operation_id=branch.operation_id,
        bytes_done=done,
        bytes_total=total,
        percent=_percent(done, total),
        start_time=branch.started_at,
        completion_time=branch.completed_at,
        message=branch.failure,
    )


def _document_library(branch: RestoreBranch) -> RestoreBranchStatus:
    return RestoreBranchStatus(
        state=branch.state,
        target=branch.target,
        operation_id=branch.operation_id,
        objects_done=branch.done,
        objects_total=branch.total,
        bytes_done=branch.bytes_done,
        bytes_total=branch.bytes_total,
        percent=_percent(branch.done, branch.total),
        start_time=branch.started_at,
        completion_time=branch.completed_at,
        message=branch.failure,
    )


def _verification(state: RestoreState) -> VerificationStatus | None:
    verdict = state.verification
    if verdict is None:
        return None
    return VerificationStatus(
        passed=verdict.passed,
        summary=verdict.summary,
        findings=verdict.findings or None,
        checks=verdict.checks or None,
        time=verdict.at,
    )


def _target(state: RestoreState) -> str | None:
    if state.plan is not None:
        return f"{state.plan.target_project_id}/{state.plan.target_environment}"
    target = state.spec.target if state.spec is not None else None
    return f"{target.project_id}/{target.environment}" if target is not None else None


_FAILURE_REASONS = {
    "database": "DatabaseFailed",
    "documentLibrary": "DocumentLibraryFailed",
    "verification": ev.VerificationFailed.event_type,
}


def _outcome(state: RestoreState) -> Outcome:
    if state.state == "Rejected":
        failed_reason: str | None = "Rejected"
    elif state.state == "Failed":
        first = next(iter(state.reasons), "")
        failed_reason = _FAILURE_REASONS.get(first, ev.RestoreFailed.event_type)
    else:
        failed_reason = None
    return Outcome(state.state, state.message, state.requested_at, state.completion_time, state.terminal, failed_reason)


def restore_status_model(
    state: RestoreState, generation: int | None, previous: Mapping[str, Any], now: datetime
) -> RestoreRequestStatus:
    """The CR's ``.status`` for this fold, at the CR's current generation (``previous``: its status now)."""
    branches = state.state != "Rejected"
    return RestoreRequestStatus(
        restore_id=state.restore_id,
        backup_id=state.backup_id,
        state=state.state,
        message=state.message,
        purpose=state.plan.purpose if state.plan is not None else state.spec.purpose if state.spec else None,
        target=_target(state),
        observed_generation=generation,
        spec_generation=state.source.generation if state.source else None,
        last_event_sequence=state.version,
        start_time=state.requested_at,
        completion_time=state.completion_time,
        database=_database(state.database) if branches else None,
        document_library=_document_library(state.document_library) if branches else None,
        verification=_verification(state),
        scratch_removed=state.scratch_removed or None,
        problems=state.problems or None,
        reasons=state.reasons or None,
        leftovers=state.leftovers or None,
        conditions=conditions(_outcome(state), generation, previous.get("conditions"), now),
    )


def restore_status_of(state: RestoreState, generation: int | None, previous: Mapping[str, Any], now: datetime) -> Json:
    """``restore_status_model`` as the JSON patched onto the CR."""
    return restore_status_model(state, generation, previous, now).render()


def restore_transition_of(event_type: str, state: RestoreState) -> Transition | None:
    """The major transitions users want in ``kubectl describe rr``: created, succeeded, failed, rejected."""
    if event_type == ev.RestoreRequested.event_type and state.spec is not None:
        into = f" into {target}" if (target := _target(state)) else ""
        what = "Verification" if state.spec.purpose == "verification" else "Restore"
        text = f"{what} {state.restore_id} of backup {state.spec.backup_id} requested{into}"
        return Transition("Normal", "RestoreCreated", text)
    if event_type == ev.RestoreSucceeded.event_type:
        return Transition("Normal", ev.RestoreSucceeded.event_type, f"Restore {state.restore_id} succeeded")
    if event_type == ev.RestoreFailed.event_type:
        return Transition("Warning", ev.RestoreFailed.event_type, (state.message or "Failed")[:MAX_EVENT_MESSAGE])
    if event_type == ev.RestoreRejected.event_type:
        return Transition("Warning", ev.RestoreRejected.event_type, (state.message or "Rejected")[:MAX_EVENT_MESSAGE])
    return None
