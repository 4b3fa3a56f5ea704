"""Every event of a backup's life. Payloads only: ids, times and causality live in the envelope.

The database branch (snapshot -> export) and the document-library branch (transfer) run in parallel;
``metadata`` ends the backup. Events that can repeat (progress, retries) carry a counter in their
dedupe key so that each one has its own deterministic id.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from lc2backup.domain.restoring import RestorePlan, RestoreRequestSpec
from lc2backup.domain.sources import RequestSource as RequestSource
from lc2backup.domain.sources import SourceKind as SourceKind
from lc2backup.domain.spec import BackupRequestSpec, Problem
from lc2backup.domain.wire import DomainEvent, EventRegistry, WireModel


class BackupRequested(DomainEvent):
    event_type: ClassVar[str] = "BackupRequested"
    spec: BackupRequestSpec
    source: RequestSource


class BackupRejected(DomainEvent):
    event_type: ClassVar[str] = "BackupRejected"
    problems: list[Problem] = Field(min_length=1)
    source: RequestSource
    project_id: str | None = None
    environment: str | None = None


class BackupQueued(DomainEvent):
    """Another backup of the same project+environment is active: this one waits its turn, in order."""

    event_type: ClassVar[str] = "BackupQueued"
    position: int = Field(ge=1, description="1 = next after the active backup, when it was queued")
    behind: str = Field(description="The backup that was active when this one was queued")


class BackupAdmitted(DomainEvent):
    """The backup's turn in its project+environment: the branches may start (at most one active per lane)."""

    event_type: ClassVar[str] = "BackupAdmitted"


class DatabaseSnapshotStarted(DomainEvent):
    event_type: ClassVar[str] = "DatabaseSnapshotStarted"
    snapshot_id: str
    instance_id: str
    operation: str | None = Field(
        default=None,
        max_length=16384,
        description="How to poll a snapshot that cannot be read until it exists: Azure's long-running operation"
        " (azure-core's continuation token: URLs and status, no credential)",
    )


class DatabaseSnapshotCompleted(DomainEvent):
    event_type: ClassVar[str] = "DatabaseSnapshotCompleted"
    snapshot_id: str
    location: str | None = Field(default=None, description="ARN or resource name of the snapshot")
    size_bytes: Count | None = None
    engine: str | None = None
    engine_version: str | None = None


class DatabaseExportStarted(DomainEvent):
    event_type: ClassVar[str] = "DatabaseExportStarted"
    operation_id: str
    location: str
    format: str
    restorable: bool = Field(description="False for analytics exports (RDS Parquet): restore from the snapshot")
    operation: str | None = Field(
        default=None,
        max_length=16384,
        description="How to poll an export that cannot be looked up by name: Azure MySQL's backup-and-export"
        " (azure-core's continuation token: URLs and status, no credential)",
    )


class DatabaseExportProgressed(DomainEvent):
    event_type: ClassVar[str] = "DatabaseExportProgressed"
    report: int = Field(ge=1)
    bytes_written: Count | None = None
    estimated_total_bytes: Count | None = None
    percent: int | None = Field(default=None, ge=0, le=100)

    def dedupe_key(self) -> str:
        return f"{self.event_type}/{self.report}"


class DatabaseExportCompleted(DomainEvent):
    event_type: ClassVar[str] = "DatabaseExportCompleted"
    location: str
    format: str
    restorable: bool
    size_bytes: Count | None = None
    sha256: Sha256 | None = None
    engine: str | None = None
    engine_version: str | None = None
    extracted_gb: float | None = None


class DatabaseBranchFailed(DomainEvent):
    event_type: ClassVar[str] = "DatabaseBranchFailed"
    step: Literal["snapshot", "export"]
    reason: str


class DatabaseBranchCancelled(DomainEvent):
    """The document-library branch (or metadata) failed the backup: this branch stops. A dump in progress is
    interrupted; a managed snapshot or export already started is not stopped in the cloud, and is listed in
    ``BackupFailed.leftovers`` with everything else the backup wrote."""

    event_type: ClassVar[str] = "DatabaseBranchCancelled"
    reason: str


class DocumentLibraryTransferStarted(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryTransferStarted"
    job_id: str
    method: str
    source: str
    destination: str
    exclude_generated_files: bool
    excluded_prefixes: list[str] = Field(default_factory=list)


Count = Annotated[int, Field(ge=0)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class TransferCounters(WireModel):
    """A document-library copy's counters, the same for every provider. null (absent from a CR's status) means
    unknown: a counter this provider cannot fill (a managed transfer service does not say what our copier
    excluded or saw vanish); it is never written as zero. Which ones a provider fills: its capabilities."""

    objects_found: Count | None = None
    objects_copied: Count | None = None
    bytes_copied: Count | None = None
    objects_excluded: Count | None = Field(
        default=None, description="Generated files skipped (thumbnails, previews, adaptive)"
    )
    bytes_excluded: Count | None = None
    objects_vanished: Count | None = Field(default=None, description="Deleted from the source between listing and copy")
    listing_complete: bool = False

    @classmethod
    def counts(cls) -> frozenset[str]:
        """The names of the counters (every field but ``listing_complete``)."""
        return frozenset(name for name in cls.model_fields if name != "listing_complete")

    @classmethod
    def zero(cls, names: frozenset[str]) -> TransferCounters:
        """Counters that start at zero for ``names`` (what a provider counts) and stay unknown for the others."""
        return cls.model_validate(dict.fromkeys(names, 0))


class TransferPosition(WireModel):
    """Where our resumable copier stands: a low-water mark in the source's listing order.

    Every source object listed at or before ``after_key`` is done (copied, excluded or vanished) and the
    manifest line of each copied one is in parts ``1..manifest_parts`` (``BackupLayout.manifest_part_key``,
    ``manifest_bytes`` in all); the counters of the event that carries the position count exactly those
    objects. A resumed copy lists the source after ``after_key`` and writes part ``manifest_parts + 1`` next.
    """

    after_key: str | None = Field(default=None, description="Source key of the mark; None: nothing done yet")
    manifest_parts: Count = 0
    manifest_bytes: Count = 0


class DocumentLibraryTransferProgressed(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryTransferProgressed"
    report: int = Field(ge=1)
    attempt: int = Field(
        default=1,
        ge=1,
        description="The delivery of the branch's message that reported (our copier runs one slice per delivery)",
    )
    counters: TransferCounters
    position: TransferPosition | None = Field(
        default=None, description="Our copier's resume point (its counters are the event's); None: a managed job"
    )

    def dedupe_key(self) -> str:
        return f"{self.event_type}/{self.report}"


class DocumentLibraryTransferCompleted(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryTransferCompleted"
    counters: TransferCounters
    manifest_location: str | None = None


class DocumentLibraryTransferFailed(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryTransferFailed"
    reason: str


class DocumentLibraryTransferCancelled(DomainEvent):
    """The database branch (or metadata) failed the backup: the copy stops between two objects. What it had
    copied stays under the backup's folder, listed in ``BackupFailed.leftovers``."""

    event_type: ClassVar[str] = "DocumentLibraryTransferCancelled"
    reason: str


class BackupMetadataWritten(DomainEvent):
    event_type: ClassVar[str] = "BackupMetadataWritten"
    location: str
    size_bytes: Count
    sha256: Sha256


class BackupSucceeded(DomainEvent):
    event_type: ClassVar[str] = "BackupSucceeded"
    metadata_location: str


class BackupFailed(DomainEvent):
    event_type: ClassVar[str] = "BackupFailed"
    branch: Literal["database", "documentLibrary", "metadata", "backup"]
    reason: str
    leftovers: list[str] = Field(
        default_factory=list,
        description="What the failed backup may have left behind, for a clean-up: its folder in the backup bucket"
        " (a partial dump, copied objects, a manifest, incomplete multipart uploads) and a managed snapshot's id",
    )


# A restore's events (its own aggregate: the subject and the envelope carry the restore id).


class RestoreRequested(DomainEvent):
    """A restore asked for, and the plan intake resolved from the backup's log (``lc2backup.domain.restoring``)."""

    event_type: ClassVar[str] = "RestoreRequested"
    spec: RestoreRequestSpec
    source: RequestSource
    plan: RestorePlan | None = Field(default=None, description="None when the request is rejected at once")


class RestoreRejected(DomainEvent):
    """Refused before anything was written to a target: every reason, each with the field it concerns."""

    event_type: ClassVar[str] = "RestoreRejected"
    problems: list[Problem] = Field(min_length=1)


class RestoreAdmitted(DomainEvent):
    """The log-level checks passed (the backup Succeeded, its artefacts restore, the target is free): the worker
    now validates against the stores themselves (metadata.json, the targets) before it writes anything."""

    event_type: ClassVar[str] = "RestoreAdmitted"


class RestoreValidated(DomainEvent):
    """metadata.json matches the log and the targets are new (or confirmed): the branches may write."""

    event_type: ClassVar[str] = "RestoreValidated"
    checks: list[str] = Field(default_factory=list)


class DatabaseRestoreStarted(DomainEvent):
    event_type: ClassVar[str] = "DatabaseRestoreStarted"
    operation_id: str = Field(description="The provider's operation (a managed restore) or our own work's name")
    target: str = Field(description="Where the database is restored: instance and database")


class DatabaseRestoreProgressed(DomainEvent):
    event_type: ClassVar[str] = "DatabaseRestoreProgressed"
    report: int = Field(ge=1)
    bytes_done: Count | None = None
    bytes_total: Count | None = None

    def dedupe_key(self) -> str:
        return f"{self.event_type}/{self.report}"


class DatabaseRestoreCompleted(DomainEvent):
    event_type: ClassVar[str] = "DatabaseRestoreCompleted"
    target: str
    bytes_read: Count | None = None


class DatabaseRestoreFailed(DomainEvent):
    event_type: ClassVar[str] = "DatabaseRestoreFailed"
    reason: str


class DocumentLibraryRestoreStarted(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryRestoreStarted"
    source: str
    destination: str
    objects_total: Count | None = None
    bytes_total: Count | None = None


class DocumentLibraryRestoreProgressed(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryRestoreProgressed"
    report: int = Field(ge=1)
    objects_done: Count
    bytes_done: Count

    def dedupe_key(self) -> str:
        return f"{self.event_type}/{self.report}"


class DocumentLibraryRestoreCompleted(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryRestoreCompleted"
    objects: Count
    bytes: Count
    objects_copied: Count = Field(description="Copied by this restore (the others were already there, equal)")


class DocumentLibraryRestoreFailed(DomainEvent):
    event_type: ClassVar[str] = "DocumentLibraryRestoreFailed"
    reason: str


class VerificationSummary(WireModel):
    tables: Count = 0
    rows: Count = 0
    objects: Count = 0
    bytes: Count = 0
    objects_sampled: Count = 0


class VerificationSucceeded(DomainEvent):
    """The restored database and objects equal what the backup recorded (every check in ``checks``)."""

    event_type: ClassVar[str] = "VerificationSucceeded"
    summary: VerificationSummary
    checks: list[str] = Field(default_factory=list)


class VerificationFailed(DomainEvent):
    event_type: ClassVar[str] = "VerificationFailed"
    summary: VerificationSummary
    findings: list[str] = Field(min_length=1)


class ScratchRemoved(DomainEvent):
    """A verification's scratch targets (database, prefix) removed."""

    event_type: ClassVar[str] = "ScratchRemoved"
    removed: list[str]


class RestoreSucceeded(DomainEvent):
    event_type: ClassVar[str] = "RestoreSucceeded"


class RestoreFailed(DomainEvent):
    event_type: ClassVar[str] = "RestoreFailed"
    reasons: dict[str, str] = Field(min_length=1, description="Per branch (database, documentLibrary, ...)")
    leftovers: list[str] = Field(default_factory=list, description="What the failed restore wrote, kept as is")


RESTORE_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    RestoreRequested,
    RestoreRejected,
    RestoreAdmitted,
    RestoreValidated,
    DatabaseRestoreStarted,
    DatabaseRestoreProgressed,
    DatabaseRestoreCompleted,
    DatabaseRestoreFailed,
    DocumentLibraryRestoreStarted,
    DocumentLibraryRestoreProgressed,
    DocumentLibraryRestoreCompleted,
    DocumentLibraryRestoreFailed,
    VerificationSucceeded,
    VerificationFailed,
    ScratchRemoved,
    RestoreSucceeded,
    RestoreFailed,
)

BACKUP_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    BackupRequested,
    BackupRejected,
    BackupQueued,
    BackupAdmitted,
    DatabaseSnapshotStarted,
    DatabaseSnapshotCompleted,
    DatabaseExportStarted,
    DatabaseExportProgressed,
    DatabaseExportCompleted,
    DatabaseBranchFailed,
    DatabaseBranchCancelled,
    DocumentLibraryTransferStarted,
    DocumentLibraryTransferProgressed,
    DocumentLibraryTransferCompleted,
    DocumentLibraryTransferFailed,
    DocumentLibraryTransferCancelled,
    BackupMetadataWritten,
    BackupSucceeded,
    BackupFailed,
)
EVENT_TYPES: tuple[type[DomainEvent], ...] = BACKUP_EVENT_TYPES + RESTORE_EVENT_TYPES


def is_restore_event(event: DomainEvent) -> bool:
    return isinstance(event, RESTORE_EVENT_TYPES)


def registry() -> EventRegistry:
    """The registry of every event (backups and restores) (add upcasters here when a schema version is bumped)."""
    return EventRegistry(EVENT_TYPES)
