"""A restore: the RestoreRequest spec, the plan resolved from the backup's log, and the restore command.

A restore is its own aggregate on the event log (``lc2.backup.evt.<restoreId>.<Type>``, the envelope's
``backupId`` holding the restore id), so it is folded, projected, audited and resumed like a backup. Its
request names a Succeeded backup and where to put it back; intake resolves everything a worker needs from the
backup's own events into a ``RestorePlan`` (recorded in ``RestoreRequested``), so a worker never reads the
backup again and a later change to the backup's projection cannot change what a running restore does.

Targets are **new** by default: a database named after the restore, a document-library prefix of its own.
Writing into a live database needs ``overwrite.confirm`` naming it; a non-empty document-library prefix needs
``merge``. A verification (``purpose: verification``) restores into scratch targets, compares them with what
the backup recorded, and removes the scratch targets when it passes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError

from lc2backup.domain.layout import location
from lc2backup.domain.sources import RequestSource
from lc2backup.domain.spec import (
    INSTANCE_ID,
    BucketName,
    DatabaseName,
    JsonInt,
    Prefix,
    Problem,
    ProjectName,
    SpecInvalid,
    SpecModel,
    problems_from,
)
from lc2backup.domain.wire import WireModel

RESTORE_NAMESPACE = uuid.UUID("5d0f3a8e-2b71-4c49-8e2a-6a9b1c7d4e52")
RESTORE_RESOURCE_NAMESPACE = uuid.UUID("c3e8a1f4-7d25-4b9e-8f06-2a5d9b7e1c48")
RESTORE_KIND = "RestoreRequest"
MAX_RESTORE_COMMAND_BYTES = 16 * 1024
Include = Literal["all", "database", "documentLibrary"]
Purpose = Literal["restore", "verification"]
ArtefactKind = Literal["export", "snapshot"]


class RestoreTarget(SpecModel):
    project_id: ProjectName = Field(description="The project restored into (default: the backup's)")
    environment: ProjectName = Field(description="The environment restored into (default: the backup's)")


class Overwrite(SpecModel):
    confirm: str = Field(min_length=1, max_length=255, description="The exact name of the live target to replace")


class RestoreDatabaseSpec(SpecModel):
    instance_id: str | None = Field(
        default=None,
        pattern=INSTANCE_ID,
        min_length=1,
        max_length=255,
        description="Instance to restore into (default: the backup's); for local, a configured instance name",
    )
    database_name: DatabaseName | None = Field(
        default=None, description="Database to create (default: <source database>_r<first 8 hex of the restore id>)"
    )
    overwrite: Overwrite | None = Field(
        default=None, description="Replace an existing database: confirm must name it (instanceId/databaseName)"
    )


class RestoreDocumentLibrarySpec(SpecModel):
    bucket: BucketName | None = Field(default=None, description="Bucket to copy into (default: the backup's source)")
    prefix: Prefix | None = Field(
        default=None, description="Prefix to copy under (default: <source prefix>.restore-<first 8 hex>/)"
    )
    merge: bool = Field(default=False, description="Copy into a prefix that already holds objects (else refused)")


class RestoreRequestSpec(SpecModel):
    """What to restore, and where: the request of ``kubectl apply``, ``lc2.backup.cmd.restore`` and the API."""

    backup_id: str = Field(pattern=r"^[0-9a-f-]{36}$", description="The Succeeded backup to restore")
    target: RestoreTarget | None = Field(default=None, description="Where to restore (default: the backup's own)")
    include: Include = Field(default="all", description="all, or only the database or the documentLibrary")
    database: RestoreDatabaseSpec = Field(default_factory=RestoreDatabaseSpec)
    document_library: RestoreDocumentLibrarySpec = Field(default_factory=RestoreDocumentLibrarySpec)
    purpose: Purpose = Field(
        default="restore",
        description="verification: restore into scratch targets, compare with what the backup recorded, remove them",
    )
    keep_failed_hours: JsonInt = Field(
        default=24, ge=0, le=720, description="A failed verification's scratch targets are kept this long"
    )

    @property
    def wants_database(self) -> bool:
        return self.include in ("all", "database")

    @property
    def wants_document_library(self) -> bool:
        return self.include in ("all", "documentLibrary")


class DatabasePlan(WireModel):
    """The database branch: which artefact goes where."""

    kind: ArtefactKind = Field(
        default="export", description="export: a portable dump into a new database; snapshot: a managed restore"
    )
    artefact: str = Field(description="The restorable artefact's location (a dump, an export, a snapshot)")
    format: str
    sha256: str | None = None
    size_bytes: int | None = None
    source_instance: str
    source_database: str | None = None
    target_instance: str = Field(description="export: the instance to create the database on; snapshot: the new one")
    target_database: str
    overwrite: bool = False
    figures: str | None = Field(default=None, description="Per-table figures taken at backup time, if any")


class DocumentLibraryPlan(WireModel):
    source_bucket: str = Field(description="The backup bucket")
    source_prefix: str = Field(description="The backup's documentlibrary/ folder")
    manifest_key: str | None = None
    objects: int | None = Field(default=None, description="Objects the backup copied")
    bytes: int | None = None
    target_bucket: str
    target_prefix: str
    merge: bool = False
    account: str | None = Field(default=None, description="Azure: the storage account holding both containers")
    scheme: str = Field(default="s3", description="How the store's locations are written: s3, gs or https (Azure)")

    @property
    def source_location(self) -> str:
        return location(self.scheme, self.source_bucket, self.source_prefix, self.account)

    @property
    def target_location(self) -> str:
        return location(self.scheme, self.target_bucket, self.target_prefix, self.account)


class RestorePlan(WireModel):
    backup_id: str
    provider: str = Field(description="The backup's provider: the one that restores it")
    project_id: str
    environment: str
    target_project_id: str
    target_environment: str
    purpose: Purpose = "restore"
    keep_failed_hours: int = 24
    metadata_location: str | None = None
    database: DatabasePlan | None = None
    document_library: DocumentLibraryPlan | None = None


class RequestRestore(WireModel):
    restore_id: uuid.UUID | None = None
    request_id: str | None = Field(default=None, min_length=1, max_length=128)
    spec: Any = None
    source: RequestSource | None = Field(
        default=None, description="Who asked (crd-gateway names the RestoreRequest CR); default: this NATS command"
    )


@dataclass(frozen=True)
class RestoreIntake:
    """A restore command parsed once: ``spec`` None means refused (``problems`` says why)."""

    restore_id: str
    spec: RestoreRequestSpec | None
    problems: list[Problem]
    backup_id: str | None  # as written, also when refused
    source: RequestSource | None = None  # as the command gave it; None: the command itself is the source


def restore_id_for_request(request_id: str) -> str:
    return str(uuid.uuid5(RESTORE_NAMESPACE, request_id))


def restore_id_for_resource(uid: str) -> str:
    """One RestoreRequest CR (by uid) is exactly one restore, across restarts and re-lists."""
    return str(uuid.uuid5(RESTORE_RESOURCE_NAMESPACE, uid))


def parse_restore_spec(raw: Any) -> RestoreRequestSpec:
    if not isinstance(raw, dict):
        raise SpecInvalid([Problem(field="spec", message="must be an object", type="dict_type")])
    try:
        spec = RestoreRequestSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecInvalid(problems_from(exc)) from exc
    prefix = spec.document_library.prefix
    if prefix and not prefix.endswith("/"):
        spec = spec.model_copy(
            update={"document_library": spec.document_library.model_copy(update={"prefix": prefix + "/"})}
        )
    return spec


def read_restore_command(raw: bytes, message_id: str) -> RestoreIntake:
    """Decode a restore command (``{"restoreId"?, "requestId"?, "source"?, "spec": {...}}``). Unreadable bytes raise
    ``ValueError`` (dead-lettered); a readable command with problems is returned to be rejected."""
    if len(raw) > MAX_RESTORE_COMMAND_BYTES:
        raise ValueError(f"payload too large: {len(raw)} bytes > {MAX_RESTORE_COMMAND_BYTES}")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"payload is not a JSON document: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"payload is JSON {type(doc).__name__}, expected an object")
    fallback = restore_id_for_request(message_id)
    raw_spec = doc.get("spec")
    written = raw_spec.get("backupId") if isinstance(raw_spec, dict) else None
    backup_id = written[:64] if isinstance(written, str) else None
    try:
        cmd = RequestRestore.model_validate(doc)
    except ValidationError as exc:
        return RestoreIntake(fallback, None, problems_from(exc, root="command"), backup_id)
    restore_id = str(cmd.restore_id) if cmd.restore_id else restore_id_for_request(cmd.request_id or message_id)
    try:
        spec = parse_restore_spec(cmd.spec)
    except SpecInvalid as invalid:
        return RestoreIntake(restore_id, None, invalid.problems, backup_id, cmd.source)
    return RestoreIntake(restore_id, spec, [], spec.backup_id, cmd.source)
