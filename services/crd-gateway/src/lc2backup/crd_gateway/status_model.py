"""The ``.status`` of each custom resource: one model per kind renders the status crd-gateway patches
(``projection``, ``restore_projection``) and generates its CRD's status schema (``crd``), so the two cannot drift.

A status carries only what is known: rendered without ``None`` (``render``), so every field is optional in the
schema; Kubernetes times are RFC 3339 to the second, in UTC (``2026-11-26T12:00:08Z``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

from lc2backup.domain import Phase, Problem, TransferCounters
from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.restore_state import RestoreBranchPhase, RestorePhase
from lc2backup.domain.restoring import Purpose
from lc2backup.domain.state import DatabasePhase, TransferPhase


def kube_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


KubeTime = Annotated[
    datetime,
    PlainSerializer(kube_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Generation = Annotated[int, Field(ge=0)]


class StatusModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    def render(self) -> dict[str, Any]:
        """The status as patched onto the CR: wire names, nothing unknown."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SnapshotStatus(StatusModel):
    """The managed snapshot."""

    id: str
    status: str = Field(description="creating, available or error")
    location: str | None = Field(default=None, description="ARN or resource name of the snapshot")
    size_bytes: int | None = Field(default=None, ge=0)


class ExportOperationStatus(StatusModel):
    """The export / dump into object storage."""

    id: str
    status: str = Field(description="running, succeeded, failed or cancelled")
    location: str
    format: str
    restorable: bool = Field(description="False for analytics exports (RDS Parquet): restore from the snapshot")
    size_bytes: int | None = Field(default=None, ge=0)
    sha256: str | None = None
    bytes_written: int | None = Field(default=None, ge=0)
    estimated_total_bytes: int | None = Field(default=None, ge=0)
    percent: int | None = Field(default=None, ge=0, le=100)


class DatabaseStatus(StatusModel):
    """Database branch: snapshot and export."""

    state: DatabasePhase
    snapshot: SnapshotStatus | None = None
    export_operation: ExportOperationStatus | None = None
    engine: str | None = None
    engine_version: str | None = None
    start_time: KubeTime | None = None
    completion_time: KubeTime | None = None
    message: str | None = Field(default=None, description="Why the branch failed or was cancelled")


class TransferJobStatus(StatusModel):
    """The transfer job."""

    id: str
    status: str = Field(description="running, succeeded, failed or cancelled")
    method: str
    source: str
    destination: str
    exclude_generated_files: bool
    excluded_prefixes: list[str] | None = None
    manifest_location: str | None = None


class DocumentLibraryStatus(StatusModel):
    """Document-library branch: the server-side transfer."""

    state: TransferPhase
    transfer_job: TransferJobStatus | None = None
    counters: TransferCounters = Field(description="Objects and bytes found, copied and excluded")
    attempt: int | None = Field(default=None, ge=1)
    start_time: KubeTime | None = None
    completion_time: KubeTime | None = None
    message: str | None = Field(default=None, description="Why the branch failed or was cancelled")


class Condition(StatusModel):
    type: Literal["Ready", "Failed"]
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(description="CamelCase reason")
    message: str = Field(description="Human-readable detail")
    last_transition_time: KubeTime
    observed_generation: Generation | None = None


Conditions = Annotated[
    list[Condition],
    Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]


class BackupRequestStatus(StatusModel):
    """A projection of the backup's event log, written by crd-gateway"""

    backup_id: str | None = Field(default=None, description="The backup this BackupRequest became (uuid5 of its uid)")
    state: Phase | None = Field(default=None, description="Overall state of the backup")
    message: str | None = Field(
        default=None, description="What is happening now, or every reason it was rejected or failed"
    )
    observed_generation: Generation | None = None
    spec_generation: Generation | None = Field(
        default=None, description="The metadata.generation the backup was requested with"
    )
    last_event_sequence: Generation | None = Field(
        default=None, description="Stream sequence of the last event this status reflects"
    )
    start_time: KubeTime | None = None
    completion_time: KubeTime | None = None
    metadata_location: str | None = Field(default=None, description="URI of metadata.json, written last")
    failed_branch: str | None = Field(default=None, description="database, documentLibrary, metadata or backup")
    leftovers: list[str] | None = Field(
        default=None, description="What a failed backup may have left behind, for a clean-up (its folder, a snapshot)"
    )
    problems: list[Problem] | None = Field(default=None, description="Every reason the request was rejected")
    database: DatabaseStatus | None = None
    document_library: DocumentLibraryStatus | None = None
    conditions: Conditions | None = None


class RestoreBranchStatus(StatusModel):
    """One branch of a restore (the database, or the document library) and how far it got."""

    state: RestoreBranchPhase
    target: str | None = Field(default=None, description="Where it restores: instance/database, or bucket/prefix")
    operation_id: str | None = Field(default=None, description="The provider's operation, or our own work's name")
    objects_done: int | None = Field(default=None, ge=0, description="Document library: objects restored so far")
    objects_total: int | None = Field(default=None, ge=0)
    bytes_done: int | None = Field(default=None, ge=0)
    bytes_total: int | None = Field(default=None, ge=0)
    percent: int | None = Field(default=None, ge=0, le=100)
    start_time: KubeTime | None = None
    completion_time: KubeTime | None = None
    message: str | None = Field(default=None, description="Why the branch failed")


class VerificationStatus(StatusModel):
    """The verdict of a verification: the restored data compared with what the backup recorded."""

    passed: bool
    summary: VerificationSummary = Field(description="Tables, rows, objects and bytes compared")
    findings: list[str] | None = Field(default=None, description="Every difference found (a failed verdict)")
    checks: list[str] | None = Field(default=None, description="Every check that passed")
    time: KubeTime


class RestoreRequestStatus(StatusModel):
    """A projection of the restore's event log, written by crd-gateway"""

    restore_id: str | None = Field(
        default=None, description="The restore this RestoreRequest became (uuid5 of its uid)"
    )
    backup_id: str | None = Field(default=None, description="The backup restored")
    state: RestorePhase | None = Field(default=None, description="Overall state of the restore")
    message: str | None = Field(
        default=None, description="What is happening now, or every reason it was rejected or failed"
    )
    purpose: Purpose | None = Field(default=None, description="restore, or verification (scratch targets, compared)")
    target: str | None = Field(default=None, description="The project/environment restored into")
    observed_generation: Generation | None = None
    spec_generation: Generation | None = Field(
        default=None, description="The metadata.generation the restore was requested with"
    )
    last_event_sequence: Generation | None = Field(
        default=None, description="Stream sequence of the last event this status reflects"
    )
    start_time: KubeTime | None = None
    completion_time: KubeTime | None = None
    database: RestoreBranchStatus | None = None
    document_library: RestoreBranchStatus | None = None
    verification: VerificationStatus | None = None
    scratch_removed: list[str] | None = Field(default=None, description="A verification's scratch targets, removed")
    problems: list[Problem] | None = Field(default=None, description="Every reason the request was rejected")
    reasons: dict[str, str] | None = Field(default=None, description="Why it failed, per branch")
    leftovers: list[str] | None = Field(
        default=None, description="What the failed restore wrote, kept as is for inspection or a clean-up"
    )
    conditions: Conditions | None = None
