"""The restore capability: one interface, one implementation per provider that can restore.

A restore worker (the restorer service) validates a plan against the stores, runs the database and the
document-library branch, verifies a scratch restore and removes it. Every call is idempotent under the
restore's id: a call repeated after a crash finds what the first one did (its own partial database is
recognised by a marker and redone; objects already restored equal are not copied again), so a restarted
worker resumes without a second effect. Errors use the providers' tree: transient ones are retried, permanent
ones fail the branch with the message (which names the artefact, object or target concerned).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.restoring import DatabasePlan, DocumentLibraryPlan, RestorePlan

Progress = Callable[[int, int], Awaitable[None]]
"""(done, done_bytes): bytes read of the dump, or objects and bytes of the document library."""


@dataclass(frozen=True)
class LibraryRestored:
    objects: int  # in the manifest, all now present in the target
    bytes: int
    copied: int  # copied by this call (the others were already there, equal)


@dataclass(frozen=True)
class Verdict:
    summary: VerificationSummary
    findings: list[str] = field(default_factory=list)  # empty: passed
    checks: list[str] = field(default_factory=list)


class RestoreProvider(Protocol):
    name: str
    restores: frozenset[str]  # the artefacts it restores: ``export`` (a portable dump), ``snapshot`` (managed)

    async def validate(self, restore_id: str, plan: RestorePlan) -> tuple[list[str], list[str]]:
        """(problems, checks passed): metadata.json against the plan, artefacts present, targets new or ours."""
        ...

    async def restore_database(self, restore_id: str, plan: DatabasePlan, progress: Progress) -> int:
        """Restore the database branch; the bytes of the artefact read (0 for a managed restore)."""
        ...

    async def restore_document_library(
        self, restore_id: str, plan: DocumentLibraryPlan, progress: Progress
    ) -> LibraryRestored: ...

    async def verify(self, restore_id: str, plan: RestorePlan) -> Verdict:
        """Compare the restored targets with what the backup recorded (an oracle of the provider's own reads)."""
        ...

    async def write_verdict(self, restore_id: str, plan: RestorePlan, body: bytes) -> str:
        """Store the verdict next to the backup (never in metadata.json); its location."""
        ...

    async def remove_scratch(self, restore_id: str, plan: RestorePlan) -> list[str]:
        """Remove a verification's scratch targets; what was removed."""
        ...
