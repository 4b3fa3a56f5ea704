"""Reading a BackupRequest manifest (the YAML a user would ``kubectl apply``) and validating it locally.

Validation is the services' own: ``read_command`` and ``parse_intake`` check apiVersion, kind, metadata and
the spec exactly as the crd-gateway does, once, so a manifest that passes here is not rejected later, and one
that fails lists every problem before anything is sent. The command the CLI sends is validated again where
it enters the next process (the API, or the NATS intake): each is a boundary of its own.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lc2backup.cli.errors import InvalidInput
from lc2backup.domain import (
    BackupRequestSpec,
    CommandUnreadable,
    Problem,
    manifest_request_id,
    parse_intake,
    read_command,
)

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class Manifest:
    origin: str
    document: dict[str, Any]
    name: str
    namespace: str
    spec: BackupRequestSpec

    @property
    def resource(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def request_id(self) -> str:
        """The same manifest (namespace/name) is the same backup, like ``kubectl apply``: sent as the API's
        Idempotency-Key and the command's Nats-Msg-Id; both ways name ``backup_id_for_manifest``'s backup."""
        return manifest_request_id(self.namespace, self.name)

    @property
    def raw_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.document["spec"]
        return spec

    def command(self) -> bytes:
        return json.dumps(self.document, separators=(",", ":")).encode()

    def nats_backup_id(self) -> str:
        """The id the crd-gateway derives for this manifest (the same function, so they cannot drift)."""
        return read_command(self.command(), self.request_id).backup_id


def _read_text(path: Path) -> tuple[str, str]:
    if str(path) == "-":
        return "<stdin>", sys.stdin.read()
    try:
        return str(path), path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc


def _parse_yaml(origin: str, text: str) -> dict[str, Any]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"{origin} is not valid YAML{where}: {problem}") from exc
    if len(docs) != 1:
        raise InvalidInput(f"{origin} holds {len(docs)} YAML documents: apply exactly one BackupRequest per file")
    if not isinstance(docs[0], dict):
        raise InvalidInput(f"{origin} is a YAML {type(docs[0]).__name__}, expected a BackupRequest mapping")
    # what is validated is exactly what is sent: YAML-only types (dates) become the strings JSON carries
    doc: dict[str, Any] = json.loads(json.dumps(docs[0], default=str))
    return doc


def validate_manifest(origin: str, doc: dict[str, Any]) -> Manifest:
    try:
        submission = parse_intake(read_command(json.dumps(doc).encode(), "lc2backup-cli"))
    except CommandUnreadable as exc:
        raise InvalidInput(f"{origin}: {exc}") from exc
    problems: list[Problem] = list(submission.shape_problems)
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    name, namespace = metadata.get("name"), metadata.get("namespace") or DEFAULT_NAMESPACE
    if not name:
        problems.append(
            Problem(field="metadata.name", message="Field required (the name identifies the backup)", type="missing")
        )
    problems.extend(submission.spec_problems)  # also behind a shape problem: every problem at once
    spec = submission.spec
    if problems or spec is None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise InvalidInput(f"{origin} is not a valid BackupRequest ({count}); nothing was sent", problems or None)
    return Manifest(origin=origin, document=doc, name=str(name), namespace=str(namespace), spec=spec)


def load_manifest(path: Path) -> Manifest:
    origin, text = _read_text(path)
    return validate_manifest(origin, _parse_yaml(origin, text))
