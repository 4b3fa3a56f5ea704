"""The RequestBackup command, as it arrives on ``lc2.backup.cmd.request`` from users, the API and the CLI.

Body: ``{"backupId"?: uuid, "requestId"?: str, "spec": {...}}`` or a whole BackupRequest manifest (the
same YAML/JSON a user would ``kubectl apply``). The backup id is deterministic: the given ``backupId``, else
derived from ``requestId``, else from the message's own id, so a re-sent command never makes two backups.

Which requests are one backup (docs/requests.md): a manifest is named by its project and namespace/name
(``backup_id_for_manifest``), the same id the API gives a POST whose ``Idempotency-Key`` is the manifest's
``manifest:<namespace>/<name>`` (``project_request_id``): so ``lc2backup apply`` through the API or NATS, and
the manifest published on NATS, are one backup. A BackupRequest CR is its own backup (its uid).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from lc2backup.domain.events import RequestSource, SourceKind
from lc2backup.domain.spec import (
    API_GROUP,
    API_VERSION,
    KIND,
    BackupRequestSpec,
    Problem,
    SpecInvalid,
    parse_spec,
    problems_from,
)
from lc2backup.domain.wire import WireModel

MAX_COMMAND_BYTES = 64 * 1024
REQUEST_NAMESPACE = uuid.UUID("0b6a3f55-1e0c-4a61-9d5b-3c1f8f7e2a10")
KUBERNETES_NAMESPACE = uuid.UUID("9d2c4e71-5b8a-4f3e-a2c6-7e1d0f4b8c33")


class ManifestMetadata(WireModel):
    model_config = WireModel.model_config | {"extra": "ignore"}

    name: str | None = Field(default=None, max_length=253)
    namespace: str | None = Field(default=None, max_length=63)
    uid: str | None = Field(default=None, max_length=128)
    generation: int | None = None


class RequestBackup(WireModel):
    backup_id: uuid.UUID | None = None
    request_id: str | None = Field(default=None, min_length=1, max_length=128)
    spec: Any = None
    source: RequestSource | None = None


class CommandUnreadable(ValueError):
    """Not a command at all (not UTF-8, not JSON, too large): it goes to the dead-letter stream."""


@dataclass(frozen=True)
class Intake:
    """A command read far enough to know which backup it is about; ``problems`` empty means valid shape."""

    backup_id: str
    spec: Any
    source: RequestSource
    problems: list[Problem]


@dataclass(frozen=True)
class Submission:
    """A command parsed once, where it entered (the NATS intake, a BackupRequest CR, the CLI): what later code
    receives. ``spec`` is the parsed spec, or None when the command is refused (``problems`` says why)."""

    backup_id: str
    source: RequestSource
    spec: BackupRequestSpec | None
    shape_problems: list[Problem]  # the command or manifest around the spec
    spec_problems: list[Problem]
    project_id: str | None  # as written (at most 63 characters), also when refused: a rejection names them
    environment: str | None

    @property
    def problems(self) -> list[Problem]:
        """Why it is refused: the command's shape first; the spec's problems once the shape is right."""
        return self.shape_problems or self.spec_problems


def _as_written(spec: Any, field: str) -> str | None:
    value = spec.get(field) if isinstance(spec, dict) else None
    return value[:63] if isinstance(value, str) else None


def parse_intake(intake: Intake) -> Submission:
    """Parse the spec of a command read by ``read_command`` (or a CR's): the one validation on its path."""
    spec: BackupRequestSpec | None = None
    spec_problems: list[Problem] = []
    if intake.spec is not None or not intake.problems:  # a missing spec is a shape problem already
        try:
            spec = parse_spec(intake.spec)
        except SpecInvalid as invalid:
            spec_problems = invalid.problems
    return Submission(
        backup_id=intake.backup_id,
        source=intake.source,
        spec=spec if not intake.problems else None,
        shape_problems=list(intake.problems),
        spec_problems=spec_problems,
        project_id=_as_written(intake.spec, "projectId"),
        environment=_as_written(intake.spec, "environment"),
    )


def backup_id_for_request(request_id: str) -> str:
    return str(uuid.uuid5(REQUEST_NAMESPACE, request_id))


def project_request_id(project_id: str, request_id: str) -> str:
    """A request id the user chose, scoped by its project: one tenant's key cannot name (or block) another
    project's backup. The ``api:`` prefix is historical (the API's Idempotency-Key came first); kept so that the
    ids of earlier requests do not change."""
    return f"api:{project_id}/{request_id}"


def manifest_request_id(namespace: str | None, name: str) -> str:
    """The request id of a manifest: its namespace/name, like ``kubectl apply`` (the CLI's Idempotency-Key)."""
    return f"manifest:{namespace or 'default'}/{name}"


def backup_id_for_manifest(project_id: str, namespace: str | None, name: str) -> str:
    """One manifest (project, namespace/name) is one backup, whether published on NATS or POSTed by the CLI."""
    return backup_id_for_request(project_request_id(project_id, manifest_request_id(namespace, name)))


def backup_id_for_resource(uid: str) -> str:
    """One BackupRequest CR (by uid) is exactly one backup, across restarts and re-lists."""
    return str(uuid.uuid5(KUBERNETES_NAMESPACE, uid))


def is_manifest(doc: dict[str, Any]) -> bool:
    return "kind" in doc or "apiVersion" in doc


def manifest_problems(doc: dict[str, Any]) -> list[Problem]:
    problems = []
    if doc.get("apiVersion") != f"{API_GROUP}/{API_VERSION}":
        problems.append(Problem(field="apiVersion", message=f"must be {API_GROUP}/{API_VERSION}", type="literal_error"))
    if doc.get("kind") != KIND:
        problems.append(Problem(field="kind", message=f"must be {KIND}", type="literal_error"))
    return problems


def read_command(raw: bytes, message_id: str, default_kind: SourceKind = "nats") -> Intake:
    """Decode a command; shape problems become ``Intake.problems`` (to reject), unreadable bytes raise."""
    if len(raw) > MAX_COMMAND_BYTES:
        raise CommandUnreadable(f"payload too large: {len(raw)} bytes > {MAX_COMMAND_BYTES}")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandUnreadable(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise CommandUnreadable(f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:  # e.g. thousands of nested '[' within the size limit
        raise CommandUnreadable("payload nests JSON arrays or objects too deeply to read") from exc
    if not isinstance(doc, dict):
        raise CommandUnreadable(f"payload is JSON {type(doc).__name__}, expected an object")
    fallback = backup_id_for_request(message_id)
    if is_manifest(doc):
        return _from_manifest(doc, fallback, default_kind)
    try:
        cmd = RequestBackup.model_validate(doc)
    except ValidationError as exc:
        source = RequestSource(kind=default_kind, command_id=message_id)
        return Intake(fallback, doc.get("spec"), source, problems_from(exc, root="command"))
    backup_id = str(cmd.backup_id) if cmd.backup_id else backup_id_for_request(cmd.request_id or message_id)
    source = cmd.source or RequestSource(kind=default_kind, command_id=cmd.request_id or message_id)
    problems = [] if cmd.spec is not None else [Problem(field="spec", message="Field required", type="missing")]
    return Intake(backup_id, cmd.spec, source, problems)


def _from_manifest(doc: dict[str, Any], fallback: str, kind: SourceKind) -> Intake:
    problems = manifest_problems(doc)
    meta_raw = doc.get("metadata") or {}
    try:
        meta = ManifestMetadata.model_validate(meta_raw if isinstance(meta_raw, dict) else {})
    except ValidationError as exc:
        problems.extend(problems_from(exc, root="metadata"))
        meta = ManifestMetadata()
    if meta.uid:
        backup_id = backup_id_for_resource(meta.uid)
    elif meta.name:  # like kubectl apply: the same name (in the same project) is the same backup
        backup_id = backup_id_for_manifest(_as_written(doc.get("spec"), "projectId") or "", meta.namespace, meta.name)
    else:
        backup_id = fallback
    source = RequestSource(
        kind=kind,
        command_id=fallback,
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        generation=meta.generation,
    )
    if "spec" not in doc:
        problems.append(Problem(field="spec", message="Field required", type="missing"))
    return Intake(backup_id, doc.get("spec"), source, problems)
