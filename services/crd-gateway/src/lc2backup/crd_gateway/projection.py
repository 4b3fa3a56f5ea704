"""What a BackupRequest becomes and shows, as pure functions: its intake, its ``.status``, its Events.

The status is a projection of the backup's fold plus the CR's current ``metadata.generation`` (the only
input from the CR, reported as ``observedGeneration``; the CRD keeps the spec immutable, so it stays the
generation the backup was requested with). Condition times come
from the fold, or are kept from the previous status while a condition does not change, so projecting the
same history twice yields the same status and the gateway can skip the patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from lc2backup.crd_gateway.status_model import (
    BackupRequestStatus,
    Condition,
    DatabaseStatus,
    DocumentLibraryStatus,
    ExportOperationStatus,
    SnapshotStatus,
    TransferJobStatus,
)
from lc2backup.domain import BackupState, Intake, Problem, RequestSource, backup_id_for_resource
from lc2backup.domain import events as ev

Json = dict[str, Any]
MAX_EVENT_MESSAGE = 1024


def identity(resource: Mapping[str, Any]) -> tuple[str, str, str, int | None]:
    """(namespace, name, uid, generation) of a CR as the API server returned it."""
    meta = resource.get("metadata") or {}
    generation = meta.get("generation")
    return (
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(meta.get("uid") or ""),
        int(generation) if isinstance(generation, int) else None,
    )


def intake_of(resource: Mapping[str, Any]) -> Intake:
    """A CR enters the same intake as a NATS command; its uid makes it exactly one backup."""
    namespace, name, uid, generation = identity(resource)
    source = RequestSource(
        kind="kubernetes",
        command_id=f"k8s:{uid}",
        namespace=namespace,
        name=name,
        uid=uid,
        generation=generation,
    )
    spec = resource.get("spec")
    problems = [] if spec is not None else [Problem(field="spec", message="Field required", type="missing")]
    return Intake(backup_id_for_resource(uid), spec, source, problems)


def _database(state: BackupState) -> DatabaseStatus:
    db = state.database
    snapshot = db.snapshot
    export = db.export
    return DatabaseStatus(
        state=db.state,
        snapshot=snapshot
        and SnapshotStatus(
            id=snapshot.snapshot_id,
            status=snapshot.status,
            location=snapshot.location,
            size_bytes=snapshot.size_bytes,
        ),
        export_operation=export
        and ExportOperationStatus(
            id=export.operation_id,
            status=export.status,
            location=export.location,
            format=export.format,
            restorable=export.restorable,
            size_bytes=export.size_bytes,
            sha256=export.sha256,
            bytes_written=export.bytes_written,
            estimated_total_bytes=export.estimated_total_bytes,
            percent=export.percent,
        ),
        engine=db.engine,
        engine_version=db.engine_version,
        start_time=db.started_at,
        completion_time=db.completed_at,
        message=db.failure or db.cancellation,
    )


def _document_library(state: BackupState) -> DocumentLibraryStatus:
    dl = state.document_library
    job = dl.transfer
    return DocumentLibraryStatus(
        state=dl.state,
        transfer_job=job
        and TransferJobStatus(
            id=job.job_id,
            status=job.status,
            method=job.method,
            source=job.source,
            destination=job.destination,
            exclude_generated_files=job.exclude_generated_files,
            excluded_prefixes=job.excluded_prefixes or None,
            manifest_location=job.manifest_location,
        ),
        counters=dl.counters,
        attempt=dl.attempt or None,
        start_time=dl.started_at,
        completion_time=dl.completed_at,
        message=dl.failure or dl.cancellation,
    )


_BRANCH_REASONS = {
    "database": "DatabaseFailed",
    "documentLibrary": "DocumentLibraryFailed",
    "metadata": "MetadataFailed",
}


def _transition_times(previous: Any) -> dict[str, tuple[str, datetime]]:
    """Each condition type of the current status with its status and transition time (unreadable ones: none)."""
    times: dict[str, tuple[str, datetime]] = {}
    for condition in previous if isinstance(previous, list) else []:
        if not isinstance(condition, dict):
            continue
        try:
            at = datetime.fromisoformat(str(condition.get("lastTransitionTime")))
        except ValueError:
            continue
        times[str(condition.get("type"))] = (str(condition.get("status")), at)
    return times


@dataclass(frozen=True)
class Outcome:
    """Where a request stands, as the ``Ready`` and ``Failed`` conditions tell it (any kind of request)."""

    phase: str
    message: str | None
    since: datetime | None  # when it was requested
    completed: datetime | None
    terminal: bool
    failed_reason: str | None  # None: not failed


def conditions(outcome: Outcome, generation: int | None, previous: Any, now: datetime) -> list[Condition]:
    """``Ready`` (True once Succeeded) and ``Failed``, each keeping its transition time while it does not change."""
    message = outcome.message or outcome.phase
    since = outcome.since or now
    terminal_at = (outcome.completed or now) if outcome.terminal else since
    failed = outcome.failed_reason is not None
    desired: list[tuple[Literal["Ready", "Failed"], Literal["True", "False"], str, str, datetime]] = [
        ("Ready", "True" if outcome.phase == "Succeeded" else "False", outcome.phase, message, terminal_at),
        (
            "Failed",
            "True" if failed else "False",
            outcome.failed_reason or "NotFailed",
            message if failed else "No failure",
            (outcome.completed or now) if failed else since,
        ),
    ]
    before = _transition_times(previous)
    out = []
    for kind, status, reason, text, at in desired:
        old = before.get(kind)
        if old is not None and old[0] == status:
            at = old[1]  # unchanged: keep its transition time
        out.append(
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=text,
                last_transition_time=at,
                observed_generation=generation,
            )
        )
    return out


def _outcome(state: BackupState) -> Outcome:
    if state.state == "Rejected":
        failed_reason: str | None = "Rejected"
    elif state.state == "Failed":
        failed_reason = _BRANCH_REASONS.get(state.failed_branch or "", ev.BackupFailed.event_type)
    else:
        failed_reason = None
    return Outcome(state.state, state.message, state.requested_at, state.completion_time, state.terminal, failed_reason)


def status_model(
    state: BackupState, generation: int | None, previous: Mapping[str, Any], now: datetime
) -> BackupRequestStatus:
    """The CR's ``.status`` for this fold, at the CR's current generation (``previous``: its status now)."""
    branches = state.state != "Rejected"
    return BackupRequestStatus(
        backup_id=state.backup_id,
        state=state.state,
        message=state.message,
        observed_generation=generation,
        spec_generation=state.source.generation if state.source else None,
        last_event_sequence=state.version,
        start_time=state.start_time,
        completion_time=state.completion_time,
        metadata_location=state.metadata_location,
        failed_branch=state.failed_branch,
        leftovers=state.leftovers or None,
        problems=state.problems or None,
        database=_database(state) if branches else None,
        document_library=_document_library(state) if branches else None,
        conditions=conditions(_outcome(state), generation, previous.get("conditions"), now),
    )


def status_of(state: BackupState, generation: int | None, previous: Mapping[str, Any], now: datetime) -> Json:
    """``status_model`` as the JSON patched onto the CR."""
    return status_model(state, generation, previous, now).render()


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (``None`` deletes); ``{}`` if equal."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: Json = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value) if isinstance(value, dict) else value
    return patch


@dataclass(frozen=True)
class Transition:
    """A Kubernetes Event worth recording: ``type`` is Normal or Warning."""

    type: str
    reason: str
    message: str


def transition_of(event_type: str, state: BackupState) -> Transition | None:
    """The major transitions users want in ``kubectl describe``: created, succeeded, failed, rejected."""
    spec = state.spec
    if event_type == ev.BackupRequested.event_type and spec is not None:
        where = f"{spec.project_id}/{spec.environment} on {spec.provider}"
        return Transition("Normal", "BackupCreated", f"Backup {state.backup_id} requested for {where}")
    if event_type == ev.BackupSucceeded.event_type:
        return Transition(
            "Normal",
            ev.BackupSucceeded.event_type,
            f"Backup {state.backup_id} succeeded; metadata at {state.metadata_location}",
        )
    if event_type == ev.BackupFailed.event_type:
        return Transition("Warning", ev.BackupFailed.event_type, (state.message or "Backup failed")[:MAX_EVENT_MESSAGE])
    if event_type == ev.BackupRejected.event_type:
        return Transition("Warning", ev.BackupRejected.event_type, (state.message or "Rejected")[:MAX_EVENT_MESSAGE])
    return None
