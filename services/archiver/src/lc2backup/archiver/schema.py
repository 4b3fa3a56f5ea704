"""The projection's tables. ``backups`` (its columns are defined in ``rows``) has at least the fields of the
original BackupRecord; ``state_doc`` is the whole folded state the API serves. No column holds a wall-clock
time of our own, so a rebuild from the stream produces identical rows.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from lc2backup.archiver.restores import TABLE_DDL as RESTORES_DDL
from lc2backup.archiver.rows import TABLE_DDL

Executor = asyncpg.Connection | PoolConnectionProxy

PROJECTION = "backups@v1"
MIGRATION_LOCK = 4242001  # pg_advisory_xact_lock key: one migration or reset at a time

CHECKPOINT_DDL = """
CREATE TABLE IF NOT EXISTS projection_checkpoint (
    name      text PRIMARY KEY,
    last_seq  bigint NOT NULL DEFAULT 0
);
"""
DDL = (
    CHECKPOINT_DDL
    + """
CREATE TABLE IF NOT EXISTS backup_events (
    seq             bigint PRIMARY KEY,
    backup_id       text NOT NULL,
    event_id        uuid NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    correlation_id  text,
    causation_id    text,
    producer        text NOT NULL,
    traceparent     text,
    payload         jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS backup_events_backup ON backup_events (backup_id, seq);
"""
    + TABLE_DDL
    + """
CREATE INDEX IF NOT EXISTS backups_list ON backups (created_at DESC, backup_id DESC);
CREATE INDEX IF NOT EXISTS backups_env ON backups (project_id, environment, created_at DESC, backup_id DESC);
CREATE INDEX IF NOT EXISTS backups_state ON backups (state, created_at DESC);
"""
    + RESTORES_DDL
)


async def migrate(conn: Executor) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)  # concurrent start-ups migrate once
        await conn.execute(DDL)
        await conn.execute(
            "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING", PROJECTION
        )


async def reset(conn: Executor) -> None:
    """Drop the projection (rebuild's first step): tables recreated empty, checkpoint back to 0.

    The checkpoint row is reset (and so locked) before the tables are touched, in the order a batch takes them
    (``apply_batch``): a batch in flight holds the row and then reads ``backups``, so dropping ``backups``
    first could deadlock with it.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(CHECKPOINT_DDL)
        await conn.execute(
            "INSERT INTO projection_checkpoint (name, last_seq) VALUES ($1, 0) "
            "ON CONFLICT (name) DO UPDATE SET last_seq = 0",
            PROJECTION,
        )
        await conn.execute("DROP TABLE IF EXISTS backups, backup_events, restores")
        await conn.execute(DDL)
