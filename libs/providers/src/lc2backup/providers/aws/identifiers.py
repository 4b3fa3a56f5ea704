"""Deterministic RDS names derived from backup id + step: the idempotency keys of RDS.

RDS has no client token for snapshots or exports; the caller-chosen identifier is the key. A redelivered
command derives the same name, gets ``…AlreadyExists`` and looks the operation up instead of starting a
second one. RDS identifier rules: letters, digits and hyphens, a letter first, no ``--``, no trailing
hyphen, bounded length (snapshots 255; export tasks 60 in the console, the lower bound used here). Names
are lowercase because RDS stores them lowercase and answers with that spelling.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

PREFIX = "lc2"
SNAPSHOT_MAX = 255
EXPORT_MAX = 60
_DIGEST = 12
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
_VALID = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$")

Step = Literal["db-snapshot", "cluster-snapshot", "export"]  # neither snapshot step is a suffix of the other
SourceKind = Literal["instance", "cluster"]


def rds_identifier(backup_id: str, step: Step, max_length: int) -> str:
    """``lc2-<backup id>-<step>``; a backup id too long for ``max_length`` keeps a prefix plus a digest."""
    slug = _NOT_ALLOWED.sub("-", backup_id.lower()).strip("-")
    fixed = len(PREFIX) + len(step) + 2
    if not slug or fixed + len(slug) > max_length:
        digest = hashlib.sha256(backup_id.encode()).hexdigest()[:_DIGEST]
        room = max_length - fixed - _DIGEST - 1
        head = slug[: max(room, 0)].rstrip("-")
        slug = f"{head}-{digest}" if head else digest
    name = f"{PREFIX}-{slug}-{step}"
    assert is_valid(name, max_length), name
    return name


def is_valid(name: str, max_length: int) -> bool:
    return len(name) <= max_length and bool(_VALID.match(name))


def snapshot_identifier(backup_id: str, kind: SourceKind) -> str:
    return rds_identifier(backup_id, "cluster-snapshot" if kind == "cluster" else "db-snapshot", SNAPSHOT_MAX)


def snapshot_kind(snapshot_id: str) -> SourceKind:
    """Which describe call finds this snapshot: the kind is part of the name we gave it."""
    return "cluster" if snapshot_id.endswith("-cluster-snapshot") else "instance"


def export_identifier(backup_id: str) -> str:
    return rds_identifier(backup_id, "export", EXPORT_MAX)


@dataclass(frozen=True)
class SourceRef:
    """What ``spec.database.instanceId`` names: an identifier (kind found by lookup) or an RDS ARN."""

    identifier: str
    kind: SourceKind | None = None
    region: str | None = None

    @classmethod
    def parse(cls, instance_id: str) -> SourceRef:
        if instance_id.startswith("arn:"):
            parts = instance_id.split(":")
            if len(parts) == 7 and parts[2] == "rds" and parts[5] in ("db", "cluster") and parts[6]:
                return cls(parts[6], "cluster" if parts[5] == "cluster" else "instance", parts[3] or None)
            raise ValueError(
                f"{instance_id!r} is not the ARN of an RDS instance (arn:aws:rds:<region>:<account>:db:<name>) "
                "or an Aurora cluster (…:cluster:<name>)"
            )
        return cls(instance_id)
