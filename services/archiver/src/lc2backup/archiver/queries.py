"""Read queries of the projection API: filters and keyset (cursor) pagination, all parameterised.

``projects`` is the caller's visibility (None: every project); a backup outside it is simply not found.

A cursor is the position after which the next page starts, ``<created_at in µs since 1970>.<backupId>``. Every
string of that shape (``CURSOR``, the OpenAPI document's pattern) is a position, so any cursor the document
allows is answered with a page: a made-up one only starts elsewhere, inside the caller's own projects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from lc2backup.archiver.rows import SUMMARY_COLUMNS


class BadCursor(ValueError):
    pass


CURSOR = r"^[0-9]{1,16}\.[0-9A-Za-z-]{1,64}$"  # 16 digits of µs reach the year 2286
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(created_at: datetime, backup_id: str) -> str:
    return f"{(created_at - _EPOCH) // _MICROSECOND}.{backup_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    micros, dot, backup_id = cursor.partition(".")
    if not (dot and micros.isascii() and micros.isdigit() and len(micros) <= 16 and backup_id):
        raise BadCursor("cursor is not a position this API returns: <microseconds>.<backupId>")
    return _EPOCH + int(micros) * _MICROSECOND, backup_id


@dataclass(frozen=True)
class Page:
    rows: list[asyncpg.Record]
    next_cursor: str | None


async def list_backups(
    pool: asyncpg.Pool,
    *,
    project_id: str | None,
    environment: str | None,
    state: str | None,
    limit: int,
    cursor: str | None,
    projects: list[str] | None = None,
) -> Page:
    where: list[str] = []
    args: list[Any] = []

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if projects is not None:
        where.append(f"project_id = ANY({param(projects)}::text[])")
    if project_id is not None:
        where.append(f"project_id = {param(project_id)}")
    if environment is not None:
        where.append(f"environment = {param(environment)}")
    if state is not None:
        where.append(f"state = {param(state)}")
    if cursor is not None:
        created, backup_id = decode_cursor(cursor)
        where.append(f"(created_at, backup_id) < ({param(created)}, {param(backup_id)})")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    sql = (
        f"SELECT {SUMMARY_COLUMNS} FROM backups {clause} "
        f"ORDER BY created_at DESC, backup_id DESC LIMIT {param(limit + 1)}"
    )
    rows = await pool.fetch(sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["backup_id"]) if more and rows else None
    return Page(rows, next_cursor)


_VISIBLE = "($2::text[] IS NULL OR project_id = ANY($2::text[]))"


async def get_backup(pool: asyncpg.Pool, backup_id: str, projects: list[str] | None = None) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"SELECT {SUMMARY_COLUMNS}, state_doc FROM backups WHERE backup_id = $1 AND {_VISIBLE}", backup_id, projects
    )


async def backup_events(pool: asyncpg.Pool, backup_id: str, projects: list[str] | None = None) -> list[asyncpg.Record]:
    """The backup's events, or none when the backup is unknown or outside ``projects``."""
    return await pool.fetch(
        "SELECT seq, event_id, type, schema_version, occurred_at, correlation_id, causation_id, producer, "
        "traceparent, payload FROM backup_events WHERE backup_id = $1 "
        f"AND EXISTS (SELECT 1 FROM backups WHERE backup_id = $1 AND {_VISIBLE}) ORDER BY seq",
        backup_id,
        projects,
    )
