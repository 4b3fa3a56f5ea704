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

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from lc2backup.archiver.schema import PROJECTION, Executor
from lc2backup.domain import BackupState, evolve, initial
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
BACKUP_COLUMNS = (
    "backup_id",
    "cr_name",
    "cr_namespace",
    "cr_uid",
    "source_kind",
    "project_id",
    "environment",
    "provider",
    "state",
    "database_state",
    "document_library_state",
    "requested_at",
    "start_time",
    "completion_time",
    "db_snapshot_id",
    "db_snapshot_size_bytes",
    "db_engine",
    "db_engine_version",
    "db_export_location",
    "db_export_format",
    "db_export_size_bytes",
    "db_export_sha256",
    "dl_source_bucket",
    "dl_destination_bucket",
    "dl_destination_prefix",
    "dl_object_count",
    "dl_total_size_bytes",
    "dl_excluded_count",
    "dl_excluded_bytes",
    "dl_manifest_path",
    "metadata_location",
    "message",
    "retention_days",
    "created_at",
    "updated_at",
    "archived_at",
    "last_seq",
    "event_count",
    "state_doc",
)
_UPSERT = (
    f"INSERT INTO backups ({', '.join(BACKUP_COLUMNS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(BACKUP_COLUMNS) + 1))}) "
    f"ON CONFLICT (backup_id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in BACKUP_COLUMNS[1:])
)


@dataclass(frozen=True)
class Applied:
    events: int
    skipped: int
    poison: list[tuple[StoredMessage, str]]
    checkpoint: int  # the stored checkpoint after the batch
    stale: bool = False  # the page starts after checkpoint + 1: nothing applied, read again from the checkpoint


def _pg_safe(value: Any) -> Any:
    """PostgreSQL's text and jsonb cannot hold U+0000, which a command may carry (a tag, a request id, a
    rejected field's name): it is stored as U+FFFD so that every event the log holds can be projected
    (the log itself keeps the original)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_pg_safe(k): _pg_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pg_safe(v) for v in value]
    return value


def _pg_row(*values: object) -> tuple[object, ...]:
    return tuple(_pg_safe(v) for v in values)


def _pg_json(doc: Any) -> str:
    text = json.dumps(doc)
    if "\\u0000" not in text:  # json.dumps escapes every U+0000 as \\u0000: none there, nothing to replace
        return text
    return json.dumps(_pg_safe(doc))


def _state_json(s: BackupState) -> str:
    """The state document, serialised by pydantic-core (a fifth of a rebuild's time went to dump + json.dumps)."""
    text = s.model_dump_json(by_alias=True)
    if "\\u0000" not in text:
        return text
    return _pg_json(s.model_dump(mode="json", by_alias=True))


def backup_row(s: BackupState) -> tuple[object, ...]:
    spec, src, db, dl = s.spec, s.source, s.database, s.document_library
    export, snap = db.export, db.snapshot
    created = s.requested_at or s.updated_at
    return _pg_row(
        s.backup_id,
        src.name if src else None,
        src.namespace if src else None,
        src.uid if src else None,
        src.kind if src else None,
        s.project_id,
        s.environment,
        spec.provider if spec else None,
        s.state,
        db.state,
        dl.state,
        s.requested_at,
        s.start_time,
        s.completion_time,
        snap.snapshot_id if snap else None,
        snap.size_bytes if snap else None,
        db.engine,
        db.engine_version,
        export.location if export else None,
        export.format if export else None,
        export.size_bytes if export else None,
        export.sha256 if export else None,
        spec.document_library.source_bucket if spec else None,
        spec.document_library.destination_bucket if spec else None,
        spec.document_library.destination_prefix if spec else None,
        dl.counters.objects_copied,
        dl.counters.bytes_copied,
        dl.counters.objects_excluded,
        dl.counters.bytes_excluded,
        dl.transfer.manifest_location if dl.transfer else None,
        s.metadata_location,
        s.message,
        spec.retention_days if spec else None,
        created,
        s.updated_at,
        s.completion_time if s.terminal else None,
        s.version,
        s.event_count,
        _state_json(s),
    )


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
        ids = sorted({r.envelope.backup_id for r in recorded})
        states: dict[str, BackupState] = {}
        for row in await conn.fetch("SELECT backup_id, state_doc FROM backups WHERE backup_id = ANY($1)", ids):
            states[row["backup_id"]] = BackupState.model_validate_json(row["state_doc"])
        for r in recorded:
            bid = r.envelope.backup_id
            states[bid] = evolve(states.get(bid) or initial(bid), r.event, r.envelope.occurred_at, r.sequence)
        await conn.copy_records_to_table(
            "backup_events",
            columns=EVENT_COLUMNS,
            records=[
                _pg_row(
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
                    _pg_json(r.envelope.data),
                )
                for r in recorded
            ],
        )
        await conn.executemany(_UPSERT, [backup_row(states[bid]) for bid in ids])
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
