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
from typing import Any

from lc2backup.domain import BackupState, Intake, Problem, RequestSource, backup_id_for_resource
from lc2backup.domain import events as ev

Json = dict[str, Any]
MAX_EVENT_MESSAGE = 1024


def _iso(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def _compact(value: Any) -> Any:
    """Drop ``None`` (and what becomes empty): a status carries only what is known."""
    if isinstance(value, dict):
        out = {k: _compact(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


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


def _database(state: BackupState) -> Json:
    db = state.database
    snapshot = db.snapshot
    export = db.export
    return {
        "state": db.state,
        "snapshot": snapshot
        and {
            "id": snapshot.snapshot_id,
            "status": snapshot.status,
            "location": snapshot.location,
            "sizeBytes": snapshot.size_bytes,
        },
        "exportOperation": export
        and {
            "id": export.operation_id,
            "status": export.status,
            "location": export.location,
            "format": export.format,
            "restorable": export.restorable,
            "sizeBytes": export.size_bytes,
            "sha256": export.sha256,
            "bytesWritten": export.bytes_written,
            "estimatedTotalBytes": export.estimated_total_bytes,
            "percent": export.percent,
        },
        "engine": db.engine,
        "engineVersion": db.engine_version,
        "startTime": _iso(db.started_at),
        "completionTime": _iso(db.completed_at),
        "message": db.failure or db.cancellation,
    }


def _document_library(state: BackupState) -> Json:
    dl = state.document_library
    job = dl.transfer
    return {
        "state": dl.state,
        "transferJob": job
        and {
            "id": job.job_id,
            "status": job.status,
            "method": job.method,
            "source": job.source,
            "destination": job.destination,
            "excludeGeneratedFiles": job.exclude_generated_files,
            "excludedPrefixes": job.excluded_prefixes or None,
            "manifestLocation": job.manifest_location,
        },
        "counters": dl.counters.model_dump(mode="json", by_alias=True),
        "attempt": dl.attempt or None,
        "startTime": _iso(dl.started_at),
        "completionTime": _iso(dl.completed_at),
        "message": dl.failure or dl.cancellation,
    }


_BRANCH_REASONS = {
    "database": "DatabaseFailed",
    "documentLibrary": "DocumentLibraryFailed",
    "metadata": "MetadataFailed",
}


def _conditions(state: BackupState, generation: int | None, previous: list[Json]) -> list[Json]:
    message = state.message or state.state
    terminal_at = _iso(state.completion_time)
    since = _iso(state.requested_at)
    failed = state.state in ("Failed", "Rejected")
    if state.state == "Rejected":
        failed_reason = "Rejected"
    elif state.state == "Failed":
        failed_reason = _BRANCH_REASONS.get(state.failed_branch or "", ev.BackupFailed.event_type)
    else:
        failed_reason = "NotFailed"
    desired: list[Json] = [
        {
            "type": "Ready",
            "status": "True" if state.state == "Succeeded" else "False",
            "reason": state.state,
            "message": message,
            "lastTransitionTime": terminal_at if state.terminal else since,
        },
        {
            "type": "Failed",
            "status": "True" if failed else "False",
            "reason": failed_reason,
            "message": message if failed else "No failure",
            "lastTransitionTime": terminal_at if failed else since,
        },
    ]
    before = {c.get("type"): c for c in previous if isinstance(c, dict)}
    out = []
    for condition in desired:
        old = before.get(condition["type"])
        if old is not None and old.get("status") == condition["status"] and old.get("lastTransitionTime"):
            condition["lastTransitionTime"] = old["lastTransitionTime"]  # unchanged: keep its transition time
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out


def status_of(state: BackupState, generation: int | None, previous: Mapping[str, Any], now: datetime) -> Json:
    """The CR's ``.status`` for this fold, at the CR's current generation (``previous``: its status now)."""
    previous_conditions = previous.get("conditions")
    conditions = _conditions(state, generation, previous_conditions if isinstance(previous_conditions, list) else [])
    for condition in conditions:
        condition["lastTransitionTime"] = condition["lastTransitionTime"] or _iso(now)
    status = {
        "backupId": state.backup_id,
        "state": state.state,
        "message": state.message,
        "observedGeneration": generation,
        "specGeneration": state.source.generation if state.source else None,
        "lastEventSequence": state.version,
        "startTime": _iso(state.start_time),
        "completionTime": _iso(state.completion_time),
        "metadataLocation": state.metadata_location,
        "failedBranch": state.failed_branch,
        "leftovers": state.leftovers or None,
        "problems": [p.model_dump(mode="json", by_alias=True) for p in state.problems] or None,
        "database": _database(state) if state.state != "Rejected" else None,
        "documentLibrary": _document_library(state) if state.state != "Rejected" else None,
        "conditions": conditions,
    }
    result: Json = _compact(status)
    return result


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
