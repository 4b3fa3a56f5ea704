"""The ``restores`` table: one row per restore (or verification), its folded state, the columns queries filter on.

A restore's events are its own aggregate on the event log; the projection applies them in the same batches and
transaction as the backups' (``projection.apply_batch``), so its checkpoint covers both and a rebuild yields the
same rows. ``backup_events`` keeps every event of both, by aggregate id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import Field

from lc2backup.archiver.rows import ApiModel
from lc2backup.domain.restore_state import RestorePhase, RestoreState

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS restores (
    restore_id          text PRIMARY KEY,
    backup_id           text,
    project_id          text,
    environment         text,
    target_project_id   text,
    target_environment  text,
    purpose             text,
    state               text NOT NULL,
    message             text,
    created_at          timestamptz,
    completed_at        timestamptz,
    updated_at          timestamptz,
    state_doc           jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS restores_list ON restores (created_at DESC, restore_id DESC);
CREATE INDEX IF NOT EXISTS restores_backup ON restores (backup_id, created_at DESC);
"""
COLUMNS = (
    "restore_id",
    "backup_id",
    "project_id",
    "environment",
    "target_project_id",
    "target_environment",
    "purpose",
    "state",
    "message",
    "created_at",
    "completed_at",
    "updated_at",
    "state_doc",
)
SUMMARY_COLUMNS = ", ".join(COLUMNS[:-1])
UPSERT = (
    f"INSERT INTO restores ({', '.join(COLUMNS)}) VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))}) "
    "ON CONFLICT (restore_id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
)


def restore_row(s: RestoreState) -> tuple[object, ...]:
    plan = s.plan
    return (
        s.restore_id,
        s.backup_id,
        plan.project_id if plan else None,
        plan.environment if plan else None,
        plan.target_project_id if plan else None,
        plan.target_environment if plan else None,
        plan.purpose if plan else (s.spec.purpose if s.spec else None),
        s.state,
        s.message,
        s.requested_at,
        s.completion_time,
        s.updated_at,
        s.model_dump_json(by_alias=True),
    )


class RestoreSummary(ApiModel):
    restore_id: str
    backup_id: str | None
    project_id: str | None = Field(description="The backup's project")
    environment: str | None
    target_project_id: str | None
    target_environment: str | None
    purpose: str | None = Field(description="restore, or verification (a scratch restore, compared and removed)")
    state: RestorePhase
    message: str | None
    created_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def of_row(cls, row: Any) -> RestoreSummary:
        return cls.model_validate({c: row[c] for c in COLUMNS[:-2]})


class RestoreDetail(RestoreSummary):
    status: RestoreState = Field(description="The full folded state: the plan, both branches, the verdict")


class RestoreList(ApiModel):
    items: list[RestoreSummary]


class Restorable(ApiModel):
    """The newest backup of an environment that a verification restored and found equal to what it recorded."""

    project_id: str
    environment: str
    backup_id: str | None = Field(description="null: no backup of this environment has been verified yet")
    backup_completed_at: datetime | None = None
    verified_at: datetime | None = None
    restore_id: str | None = Field(default=None, description="The verification that proved it")


_VISIBLE = "($1::text[] IS NULL OR project_id = ANY($1::text[]) OR target_project_id = ANY($1::text[]))"


async def list_restores(
    pool: asyncpg.Pool, projects: list[str] | None, backup_id: str | None, limit: int
) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {SUMMARY_COLUMNS} FROM restores WHERE {_VISIBLE} AND ($2::text IS NULL OR backup_id = $2) "
        "ORDER BY created_at DESC NULLS LAST, restore_id DESC LIMIT $3",
        projects,
        backup_id,
        limit,
    )


async def get_restore(pool: asyncpg.Pool, restore_id: str, projects: list[str] | None) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"SELECT {SUMMARY_COLUMNS}, state_doc FROM restores WHERE restore_id = $2 AND {_VISIBLE}", projects, restore_id
    )


async def restore_events(pool: asyncpg.Pool, restore_id: str, projects: list[str] | None) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT seq, event_id, type, schema_version, occurred_at, correlation_id, causation_id, producer, "
        "traceparent, payload FROM backup_events WHERE backup_id = $2 "
        f"AND EXISTS (SELECT 1 FROM restores WHERE restore_id = $2 AND {_VISIBLE}) ORDER BY seq",
        projects,
        restore_id,
    )


async def last_restorable(pool: asyncpg.Pool, project_id: str, environment: str) -> asyncpg.Record | None:
    """The newest backup of the environment with a Succeeded verification (newest by the backup's completion)."""
    return await pool.fetchrow(
        "SELECT b.backup_id, b.completion_time AS backup_completed_at, r.completed_at AS verified_at, r.restore_id "
        "FROM restores r JOIN backups b ON b.backup_id = r.backup_id "
        "WHERE r.purpose = 'verification' AND r.state = 'Succeeded' AND b.project_id = $1 AND b.environment = $2 "
        "ORDER BY b.completion_time DESC NULLS LAST, r.completed_at DESC LIMIT 1",
        project_id,
        environment,
    )
