"""Completing a backup: metadata.json once both branches are done, then BackupSucceeded; or BackupFailed
with the failing branch's reason as soon as one branch fails. A failure first cancels the branch still
running (its service stops it between two objects or chunks), and BackupFailed lists what the backup may
have left behind, so that a clean-up can find it.

``metadata_document`` depends only on the event log (no wall clock), so a retried write produces the same
bytes and the create-only put can tell "already written by us" from "someone else's file".
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Literal

from lc2backup.domain import BRANCH_ENDED, BackupLayout, BackupState
from lc2backup.domain.events import (
    BackupFailed,
    BackupMetadataWritten,
    BackupSucceeded,
    DatabaseBranchCancelled,
    DocumentLibraryTransferCancelled,
)
from lc2backup.domain.metadata import (
    DatabaseExportMetadata,
    DatabaseMetadata,
    DocumentLibraryMetadata,
    MetadataDocument,
)
from lc2backup.domain.wire import DomainEvent

Action = Literal["nothing", "write_metadata", "succeed", "fail"]


def next_action(state: BackupState) -> Action:
    if state.terminal or not state.exists:
        return "nothing"
    if state.database.state == "Failed" or state.document_library.state == "Failed":
        return "fail"
    if state.database.state == "Completed" and state.document_library.state == "Completed":
        return "write_metadata" if state.metadata_location is None else "succeed"
    return "nothing"


def leftovers(state: BackupState) -> list[str]:
    """Where a backup that ends Failed may have left something: its folder in the backup bucket once it was
    admitted (a partial dump, copied objects, a manifest, incomplete multipart uploads — a copy stopped by a
    cancellation can still finish the objects in flight, so the folder, not a list of keys) and the managed
    snapshot it took."""
    found: list[str] = []
    snapshot = state.database.snapshot
    if snapshot is not None:
        found.append(snapshot.location or f"snapshot {snapshot.snapshot_id}")
    if state.admitted and state.spec is not None:
        layout = BackupLayout.of(state.spec, state.backup_id)
        found.append(layout.uri(layout.root))
    return found


def _cancel_running(state: BackupState, reason: str) -> list[DomainEvent]:
    """Stop the branches that have not ended: each one's service sees it in the fold and stops its work."""
    cancelled: list[DomainEvent] = []
    if state.database.state not in BRANCH_ENDED:
        cancelled.append(DatabaseBranchCancelled(reason=reason))
    if state.document_library.state not in BRANCH_ENDED:
        cancelled.append(DocumentLibraryTransferCancelled(reason=reason))
    return cancelled


def _failed(
    state: BackupState, branch: Literal["database", "documentLibrary", "metadata"], reason: str
) -> list[DomainEvent]:
    cancels = _cancel_running(state, f"the backup failed ({branch}): {reason}")
    return [*cancels, BackupFailed(branch=branch, reason=reason, leftovers=leftovers(state))]


def record_failed(state: BackupState) -> list[DomainEvent]:
    if next_action(state) != "fail":
        return []
    if state.database.state == "Failed":
        return _failed(state, "database", state.database.failure or "database branch failed")
    return _failed(state, "documentLibrary", state.document_library.failure or "document library branch failed")


def record_metadata_written(state: BackupState, location: str, size: int, sha256: str) -> list[DomainEvent]:
    if next_action(state) != "write_metadata":
        return []
    return [BackupMetadataWritten(location=location, size_bytes=size, sha256=sha256)]


def record_succeeded(state: BackupState) -> list[DomainEvent]:
    if next_action(state) != "succeed" or state.metadata_location is None:
        return []
    return [BackupSucceeded(metadata_location=state.metadata_location)]


def record_metadata_failure(state: BackupState, reason: str) -> list[DomainEvent]:
    if state.terminal or not state.exists:
        return []
    return _failed(state, "metadata", reason)


def write_overdue(state: BackupState, now: datetime, deadline: timedelta) -> bool:
    """Both branches completed longer than ``deadline`` ago and metadata.json is still not written."""
    done = [t for t in (state.database.completed_at, state.document_library.completed_at) if t is not None]
    return next_action(state) == "write_metadata" and len(done) == 2 and now - max(done) > deadline


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def metadata_document(state: BackupState) -> MetadataDocument:
    spec = state.spec
    assert spec is not None
    db, dl = state.database, state.document_library
    finished = max(t for t in (db.completed_at, dl.completed_at) if t is not None)
    layout = BackupLayout.of(spec, state.backup_id)
    export = db.export
    transfer = dl.transfer
    return MetadataDocument(
        backup_id=state.backup_id,
        project_id=spec.project_id,
        environment=spec.environment,
        provider=spec.provider,
        tags={"projectId": spec.project_id, "environment": spec.environment, **spec.tags},
        source=state.source,
        requested_at=state.requested_at,
        started_at=state.start_time,
        completed_at=finished,
        duration_seconds=_seconds(state.start_time, finished),
        retention_days=spec.retention_days,
        expires_at=finished + timedelta(days=spec.retention_days),
        location=layout.uri(layout.root),
        database=DatabaseMetadata(
            type=spec.database.type,
            instance_id=spec.database.instance_id,
            database_name=spec.database.database_name,
            databases_ignored=spec.database.databases_to_ignore,
            engine=db.engine,
            engine_version=db.engine_version,
            snapshot=db.snapshot,
            export=DatabaseExportMetadata(
                location=export.location,
                format=export.format,
                restorable=export.restorable,
                size_bytes=export.size_bytes,
                sha256=export.sha256,
                extracted_gb=export.extracted_gb,
            )
            if export
            else None,
            started_at=db.started_at,
            completed_at=db.completed_at,
            duration_seconds=_seconds(db.started_at, db.completed_at),
        ),
        document_library=DocumentLibraryMetadata(
            **dict(dl.counters),
            source=transfer.source if transfer else None,
            destination=transfer.destination if transfer else None,
            method=transfer.method if transfer else None,
            job_id=transfer.job_id if transfer else None,
            exclude_generated_files=spec.document_library.exclude_generated_files,
            excluded_prefixes=transfer.excluded_prefixes if transfer else [],
            manifest=transfer.manifest_location if transfer else None,
            started_at=dl.started_at,
            completed_at=dl.completed_at,
            duration_seconds=_seconds(dl.started_at, dl.completed_at),
        ),
    )


def belongs_to(existing: bytes, backup_id: str) -> bool:
    try:
        return bool(json.loads(existing).get("backupId") == backup_id)
    except (ValueError, AttributeError):
        return False
