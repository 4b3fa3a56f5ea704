"""``metadata.json``: the document written once, last, next to a backup's artefacts; the file a restorer reads first.

One model for the writer (the metadata service builds it from the fold) and for every reader (a restore, the
CLI): its JSON Schema is generated into ``contracts/metadata.v1.schema.json``. Every key is always written,
``null`` where a value is unknown, so the schema lists every key as required. A change of shape bumps
``schemaVersion`` (and the contract's file name) and keeps the old schema published for backups already written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from lc2backup.domain.events import RequestSource, TransferCounters
from lc2backup.domain.spec import DatabaseBackupType, Provider
from lc2backup.domain.state import SnapshotInfo
from lc2backup.domain.wire import WireModel

METADATA_SCHEMA_VERSION: Literal[1] = 1


class _Document(WireModel):
    # Every key is written, so in the schema (generated in serialization mode) every key is required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Producer(_Document):
    name: str = "lc2backup"
    version: str = "0.1.0"


class DatabaseExportMetadata(_Document):
    """The dump or managed export in object storage."""

    location: str = Field(description="URI of the dump, or of the export's folder")
    format: str = Field(description="e.g. pg_dump custom format, mysqldump SQL, RDS Parquet")
    restorable: bool = Field(description="False for analytics exports (RDS Parquet): restore from the snapshot")
    size_bytes: int | None = Field(ge=0, description="Size of the dump; null where the provider does not report it")
    sha256: str | None = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the dump, where known")
    extracted_gb: float | None = Field(description="Data extracted by a managed export (RDS), where reported")


class DatabaseMetadata(_Document):
    type: DatabaseBackupType = Field(description="snapshot (managed snapshot + export) or dump (logical dump only)")
    instance_id: str
    database_name: str | None = Field(description="The dumped database; null where the spec names none")
    databases_ignored: list[str]
    engine: str | None
    engine_version: str | None
    snapshot: SnapshotInfo | None = Field(description="The managed snapshot (fast restore); null for a dump")
    export: DatabaseExportMetadata | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None


class DocumentLibraryMetadata(TransferCounters):
    """The copy of the document library; the transfer's counters are keys of this object."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    source: str | None = Field(description="URI of the copied bucket/prefix")
    destination: str | None = Field(description="URI of the copy: <location>documentlibrary/")
    method: str | None = Field(description="How the objects were copied (server-side copy, transfer job, ...)")
    job_id: str | None
    exclude_generated_files: bool
    excluded_prefixes: list[str] = Field(description="Source prefixes skipped as generated files")
    manifest: str | None = Field(description="URI of the manifest: one JSON line per copied object (key, size, etag)")
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None


class MetadataDocument(_Document):
    """What a backup holds and where: read it first to restore. Times are RFC 3339; durations in seconds."""

    schema_version: Literal[1] = METADATA_SCHEMA_VERSION
    backup_id: str
    project_id: str
    environment: str
    provider: Provider
    tags: dict[str, str] = Field(description="projectId and environment, then the request's own tags")
    source: RequestSource | None = Field(description="Where the request came from (NATS, the API, a BackupRequest)")
    requested_at: datetime | None
    started_at: datetime | None
    completed_at: datetime = Field(description="When the later of the two branches completed")
    duration_seconds: float | None
    retention_days: int
    expires_at: datetime = Field(description="completedAt + retentionDays")
    location: str = Field(description="URI of the backup's folder, which holds every artefact and this file")
    database: DatabaseMetadata
    document_library: DocumentLibraryMetadata
    producer: Producer = Producer()

    def render(self) -> bytes:
        """The bytes written: sorted keys, indented, so a document renders the same way every time."""
        return (json.dumps(self.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True) + "\n").encode()
