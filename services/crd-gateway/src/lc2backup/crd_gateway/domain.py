"""crd-gateway's pure decisions.

Intake: a command becomes exactly one BackupRequested, or one BackupRejected with every reason.
Admission: at most one backup per project+environment (a *lane*) is active; later ones queue in the order they
were requested and are admitted one by one as the active backup ends. Pure: the same inputs always decide the
same events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from lc2backup.domain import BackupRequestSpec, BackupState, Submission
from lc2backup.domain.events import BackupAdmitted, BackupQueued, BackupRejected, BackupRequested
from lc2backup.domain.wire import DomainEvent


def decide_intake(state: BackupState, submission: Submission) -> list[DomainEvent]:
    """Nothing if the backup already exists (a re-sent command); else requested or rejected. The spec was
    parsed where the command entered (``parse_intake``)."""
    if state.exists:
        return []
    if submission.spec is not None:
        return [BackupRequested(spec=submission.spec, source=submission.source)]
    return [
        BackupRejected(
            problems=submission.problems,
            source=submission.source,
            project_id=submission.project_id,
            environment=submission.environment,
        )
    ]


@dataclass(frozen=True)
class Lane:
    """One project+environment: the active backup and the queue behind it, in request order."""

    active: str | None = None
    queue: tuple[str, ...] = ()

    def enter(self, backup_id: str) -> Lane:
        if backup_id == self.active or backup_id in self.queue:
            return self
        if self.active is None:
            return replace(self, active=backup_id)
        return replace(self, queue=(*self.queue, backup_id))

    def leave(self, backup_id: str) -> Lane:
        if backup_id == self.active:
            return Lane(self.queue[0] if self.queue else None, self.queue[1:])
        if backup_id in self.queue:
            return replace(self, queue=tuple(b for b in self.queue if b != backup_id))
        return self

    def position(self, backup_id: str) -> int | None:
        return self.queue.index(backup_id) + 1 if backup_id in self.queue else None

    def encode(self) -> bytes:
        return json.dumps({"active": self.active, "queue": list(self.queue)}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> Lane:
        if not raw:
            return cls()
        doc = json.loads(raw)
        return cls(doc.get("active"), tuple(doc.get("queue", ())))


def lane_key(state: BackupState) -> str | None:
    """The lane a backup belongs to (a NATS KV key), or None for a backup that never entered one."""
    return None if state.spec is None else lane_of(state.spec)


def lane_of(spec: BackupRequestSpec) -> str:
    return f"{spec.project_id}.{spec.environment}"


def decide_admission(state: BackupState, lane: Lane) -> list[DomainEvent]:
    """Admit the lane's active backup; record a queued backup's place once."""
    if state.terminal or not state.exists or state.spec is None:
        return []
    if lane.active == state.backup_id:
        return [] if state.admitted else [BackupAdmitted()]
    position = lane.position(state.backup_id)
    # Not once admitted: a lane read before a concurrent leave can still show the backup queued.
    if position is not None and state.queue_position is None and lane.active is not None and not state.admitted:
        return [BackupQueued(position=position, behind=lane.active)]
    return []
