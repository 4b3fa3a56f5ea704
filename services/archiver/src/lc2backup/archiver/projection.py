"""Applying events to PostgreSQL exactly once: one transaction per batch holds the rows and the checkpoint.

The checkpoint row is locked (``FOR UPDATE``) for the batch, events at or below it are skipped, and the
new checkpoint is written in the same transaction, so a crash anywhere leaves either the whole batch or
none of it, and a second archiver replica simply waits and skips.

A page is read before that lock is taken (and the next one while this one is written), so the checkpoint can
have moved back meanwhile: a rebuild's reset sets it to 0. A page read from further on than the locked
checkpoint + 1 is therefore refused (``Applied.stale``) and the projector reads again from the checkpoint;
applied, it would move the checkpoint past events that were never projected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from lc2backup.archiver import restores
from lc2backup.archiver.rows import UPSERT, backup_row, pg_json, pg_row
from lc2backup.archiver.schema import PROJECTION, Executor
from lc2backup.domain import BackupState, evolve, initial
from lc2backup.domain.events import is_restore_event
from lc2backup.domain.restore_state import RestoreState, evolve_restore, initial_restore
from lc2backup.domain.wire import EventRegistry, RecordedEvent
from lc2backup.eventing import EventingError, StoredMessage, Topology, read_event
from lc2backup.runtime import crash_point

log = logging.getLogger(__name__)

EVENT_COLUMNS = (
    "seq",
    "backup_id",
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "correlation_id",
    "causation_id",
    "producer",
    "traceparent",
    "payload",
)


@dataclass(frozen=True)
class Applied:
    events: int
    skipped: int
    poison: list[tuple[StoredMessage, str]]
    checkpoint: int  # the stored checkpoint after the batch
    stale: bool = False  # the page starts after checkpoint + 1: nothing applied, read again from the checkpoint


@dataclass(frozen=True)
class Decoded:
    """A page of the stream, decoded (pure CPU: done while the previous page is being written)."""

    start: int  # the sequence the read started from: the page holds every event from there to last_sequence
    last_sequence: int
    recorded: list[RecordedEvent]
    poison: list[tuple[StoredMessage, str]]


def decode_page(
    registry: EventRegistry, start: int, batch: Sequence[StoredMessage], topology: Topology | None = None
) -> Decoded:
    """``batch`` as read from ``start`` on. Messages that are not events (``read_event``) are kept aside as
    poison, with the reason."""
    topology = topology or Topology()
    recorded: list[RecordedEvent] = []
    poison: list[tuple[StoredMessage, str]] = []
    for message in batch:
        try:
            recorded.append(read_event(registry, topology, message))
        except EventingError as exc:
            poison.append((message, str(exc)))
    return Decoded(start, batch[-1].sequence if batch else 0, recorded, poison)


async def apply_batch(conn: Executor, page: Decoded) -> Applied:
    """Apply ``page`` once: what is at or below the checkpoint was applied before and is skipped; a page that
    starts after checkpoint + 1 would leave a gap and is refused (``stale``)."""
    async with conn.transaction():
        checkpoint = await conn.fetchval(
            "SELECT last_seq FROM projection_checkpoint WHERE name = $1 FOR UPDATE", PROJECTION
        )
        if page.start > checkpoint + 1:
            return Applied(0, 0, [], checkpoint, stale=True)
        if page.last_sequence <= checkpoint:
            return Applied(0, len(page.recorded) + len(page.poison), [], checkpoint)
        recorded = [r for r in page.recorded if r.sequence > checkpoint]
        poison = [(m, reason) for m, reason in page.poison if m.sequence > checkpoint]
        restore_ids = sorted({r.envelope.backup_id for r in recorded if is_restore_event(r.event)})
        ids = sorted({r.envelope.backup_id for r in recorded if not is_restore_event(r.event)})
        states: dict[str, BackupState] = {}
        for row in await conn.fetch("SELECT backup_id, state_doc FROM backups WHERE backup_id = ANY($1)", ids):
            states[row["backup_id"]] = BackupState.model_validate_json(row["state_doc"])
        restored: dict[str, RestoreState] = {}
        for row in await conn.fetch(
            "SELECT restore_id, state_doc FROM restores WHERE restore_id = ANY($1)", restore_ids
        ):
            restored[row["restore_id"]] = RestoreState.model_validate_json(row["state_doc"])
        for r in recorded:
            aid, at = r.envelope.backup_id, r.envelope.occurred_at
            if is_restore_event(r.event):
                restored[aid] = evolve_restore(restored.get(aid) or initial_restore(aid), r.event, at, r.sequence)
            else:
                states[aid] = evolve(states.get(aid) or initial(aid), r.event, at, r.sequence)
        await conn.copy_records_to_table(
            "backup_events",
            columns=EVENT_COLUMNS,
            records=[
                pg_row(
                    r.sequence,
                    r.envelope.backup_id,
                    r.envelope.id,
                    r.envelope.type,
                    r.envelope.schema_version,
                    r.envelope.occurred_at,
                    r.envelope.correlation_id,
                    r.envelope.causation_id,
                    r.envelope.producer,
                    r.envelope.trace.traceparent,
                    pg_json(r.envelope.data),
                )
                for r in recorded
            ],
        )
        await conn.executemany(UPSERT, [backup_row(states[bid]) for bid in ids])
        await conn.executemany(restores.UPSERT, [restores.restore_row(restored[rid]) for rid in restore_ids])
        crash_point("projection:rows-written")  # test-only (lc2backup.runtime.crashpoints)
        last = page.last_sequence
        await conn.execute("UPDATE projection_checkpoint SET last_seq = $2 WHERE name = $1", PROJECTION, last)
    crash_point("projection:committed")
    skipped = len(page.recorded) + len(page.poison) - len(recorded) - len(poison)
    return Applied(len(recorded), skipped, poison, last)


async def checkpoint(conn: Executor | asyncpg.Pool) -> int:
    """The stored checkpoint, read without a lock (``apply_batch`` checks it again under its lock)."""
    value = await conn.fetchval("SELECT last_seq FROM projection_checkpoint WHERE name = $1", PROJECTION)
    return int(value or 0)
