"""Intake decisions: a command becomes exactly one BackupRequested, or one BackupRejected with every reason.

Pure: the same command against the same history always decides the same events.
"""

from __future__ import annotations

from typing import Any

from lc2backup.domain import BackupState, Intake, Problem, SpecInvalid, parse_spec
from lc2backup.domain.events import BackupRejected, BackupRequested
from lc2backup.eventing.events import DomainEvent


def _best_effort(spec: Any, field: str) -> str | None:
    value = spec.get(field) if isinstance(spec, dict) else None
    return value[:63] if isinstance(value, str) else None


def decide_intake(state: BackupState, intake: Intake) -> list[DomainEvent]:
    """Nothing if the backup already exists (a re-sent command); else requested or rejected."""
    if state.exists:
        return []
    problems: list[Problem] = list(intake.problems)
    if not problems:
        try:
            spec = parse_spec(intake.spec)
        except SpecInvalid as invalid:
            problems = invalid.problems
        else:
            return [BackupRequested(spec=spec, source=intake.source)]
    return [
        BackupRejected(
            problems=problems,
            source=intake.source,
            project_id=_best_effort(intake.spec, "projectId"),
            environment=_best_effort(intake.spec, "environment"),
        )
    ]
