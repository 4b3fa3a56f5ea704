"""The projection's tables. ``backups`` has at least the fields of the original BackupRecord; ``state_doc``
is the whole folded state the API serves. No column holds a wall-clock time of our own, so a rebuild from
the stream produces identical rows.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

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
CREATE TABLE IF NOT EXISTS backups (
    backup_id               text PRIMARY KEY,
    cr_name                 text,
    cr_namespace            text,
    cr_uid                  text,
    source_kind             text,
    project_id              text,
    environment             text,
    provider                text,
    state                   text NOT NULL,
    database_state          text NOT NULL,
    document_library_state  text NOT NULL,
    requested_at            timestamptz,
    start_time              timestamptz,
    completion_time         timestamptz,
    db_snapshot_id          text,
    db_snapshot_size_bytes  bigint,
    db_engine               text,
    db_engine_version       text,
    db_export_location      text,
    db_export_format        text,
    db_export_size_bytes    bigint,
    db_export_sha256        text,
    dl_source_bucket        text,
    dl_destination_bucket   text,
    dl_destination_prefix   text,
    dl_object_count         bigint,
    dl_total_size_bytes     bigint,
    dl_excluded_count       bigint,
    dl_excluded_bytes       bigint,
    dl_manifest_path        text,
    metadata_location       text,
    message                 text,
    retention_days          integer,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    archived_at             timestamptz,
    last_seq                bigint NOT NULL,
    event_count             integer NOT NULL,
    state_doc               jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS backups_list ON backups (created_at DESC, backup_id DESC);
CREATE INDEX IF NOT EXISTS backups_env ON backups (project_id, environment, created_at DESC, backup_id DESC);
CREATE INDEX IF NOT EXISTS backups_state ON backups (state, created_at DESC);
"""
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
        await conn.execute("DROP TABLE IF EXISTS backups, backup_events")
        await conn.execute(DDL)
