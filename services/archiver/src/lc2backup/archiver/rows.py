"""The ``backups`` row, defined once: each column with its SQL type and the value the fold gives it.

The API's backup summary is the model that declares the columns it shows (``Annotated[..., Column(...)]`` on
its fields; ``source`` is three of them), and ``STORED`` lists the ones only the projection keeps. From these
come the table's DDL (``schema``), the upsert and its row (``projection``), the columns the queries select
(``queries``) and the summary built from a selected row (``api``).

No column holds a wall-clock time of our own, so a rebuild from the stream produces identical rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from lc2backup.domain import BackupState, Phase


@dataclass(frozen=True)
class Column:
    """A column of ``backups``: its SQL type and how a folded state fills it. ``name`` defaults to the field's."""

    sql: str
    value: Callable[[BackupState], object]
    name: str = ""


class Row(Protocol):
    """A selected row (``asyncpg.Record``), read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class SourceOut(ApiModel):
    kind: Annotated[str | None, Column("text", lambda s: s.source.kind if s.source else None, "source_kind")] = None
    namespace: Annotated[
        str | None, Column("text", lambda s: s.source.namespace if s.source else None, "cr_namespace")
    ] = None
    name: Annotated[str | None, Column("text", lambda s: s.source.name if s.source else None, "cr_name")] = None


def _export_size(s: BackupState) -> int | None:
    export = s.database.export
    return export.size_bytes if export else None


class BackupSummary(ApiModel):
    backup_id: Annotated[str, Column("text PRIMARY KEY", lambda s: s.backup_id)]
    project_id: Annotated[str | None, Column("text", lambda s: s.project_id)]
    environment: Annotated[str | None, Column("text", lambda s: s.environment)]
    provider: Annotated[str | None, Column("text", lambda s: s.spec.provider if s.spec else None)]
    state: Annotated[Phase, Column("text NOT NULL", lambda s: s.state)]
    database_state: Annotated[str, Column("text NOT NULL", lambda s: s.database.state)]
    document_library_state: Annotated[str, Column("text NOT NULL", lambda s: s.document_library.state)]
    requested_at: Annotated[datetime | None, Column("timestamptz", lambda s: s.requested_at)]
    start_time: Annotated[datetime | None, Column("timestamptz", lambda s: s.start_time)]
    completion_time: Annotated[datetime | None, Column("timestamptz", lambda s: s.completion_time)]
    updated_at: Annotated[datetime, Column("timestamptz NOT NULL", lambda s: s.updated_at)]
    message: Annotated[str | None, Column("text", lambda s: s.message)]
    metadata_location: Annotated[str | None, Column("text", lambda s: s.metadata_location)]
    source: SourceOut
    objects_copied: Annotated[
        int | None, Column("bigint", lambda s: s.document_library.counters.objects_copied, "dl_object_count")
    ]
    bytes_copied: Annotated[
        int | None, Column("bigint", lambda s: s.document_library.counters.bytes_copied, "dl_total_size_bytes")
    ]
    objects_excluded: Annotated[
        int | None, Column("bigint", lambda s: s.document_library.counters.objects_excluded, "dl_excluded_count")
    ]
    database_export_bytes: Annotated[int | None, Column("bigint", _export_size, "db_export_size_bytes")]
    version: Annotated[int, Column("bigint NOT NULL", lambda s: s.version, "last_seq")] = Field(
        description="Stream sequence of the last event applied to this backup"
    )
    event_count: Annotated[int, Column("integer NOT NULL", lambda s: s.event_count)]

    @classmethod
    def of_row(cls, row: Row, **more: Any) -> Self:
        """The summary of a row selected with ``SUMMARY_COLUMNS`` (``more``: a subclass's own fields)."""
        return cls.model_validate(_values(BackupSummary, row) | more)


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


def pg_row(*values: object) -> tuple[object, ...]:
    return tuple(_pg_safe(v) for v in values)


def pg_json(doc: Any) -> str:
    text = json.dumps(doc)
    if "\\u0000" not in text:  # json.dumps escapes every U+0000 as \\u0000: none there, nothing to replace
        return text
    return json.dumps(_pg_safe(doc))


def state_json(s: BackupState) -> str:
    """The state document, serialised by pydantic-core (a fifth of a rebuild's time went to dump + json.dumps)."""
    text = s.model_dump_json(by_alias=True)
    if "\\u0000" not in text:
        return text
    return pg_json(s.model_dump(mode="json", by_alias=True))


def _snapshot(s: BackupState, attribute: str) -> object:
    snapshot = s.database.snapshot
    return getattr(snapshot, attribute) if snapshot else None


def _export(s: BackupState, attribute: str) -> object:
    export = s.database.export
    return getattr(export, attribute) if export else None


def _spec_dl(s: BackupState, attribute: str) -> object:
    return getattr(s.spec.document_library, attribute) if s.spec else None


# Columns the summary does not show: the rest of the original BackupRecord, the projection's bookkeeping and
# ``state_doc``, the whole folded state that ``GET /backups/{id}`` serves.
STORED: tuple[Column, ...] = (
    Column("text", lambda s: s.source.uid if s.source else None, "cr_uid"),
    Column("text", lambda s: _snapshot(s, "snapshot_id"), "db_snapshot_id"),
    Column("bigint", lambda s: _snapshot(s, "size_bytes"), "db_snapshot_size_bytes"),
    Column("text", lambda s: s.database.engine, "db_engine"),
    Column("text", lambda s: s.database.engine_version, "db_engine_version"),
    Column("text", lambda s: _export(s, "location"), "db_export_location"),
    Column("text", lambda s: _export(s, "format"), "db_export_format"),
    Column("text", lambda s: _export(s, "sha256"), "db_export_sha256"),
    Column("text", lambda s: _spec_dl(s, "source_bucket"), "dl_source_bucket"),
    Column("text", lambda s: _spec_dl(s, "destination_bucket"), "dl_destination_bucket"),
    Column("text", lambda s: _spec_dl(s, "destination_prefix"), "dl_destination_prefix"),
    Column("bigint", lambda s: s.document_library.counters.bytes_excluded, "dl_excluded_bytes"),
    Column(
        "text",
        lambda s: s.document_library.transfer.manifest_location if s.document_library.transfer else None,
        "dl_manifest_path",
    ),
    Column("integer", lambda s: s.spec.retention_days if s.spec else None, "retention_days"),
    Column("timestamptz NOT NULL", lambda s: s.requested_at or s.updated_at, "created_at"),  # the list's order
    Column("timestamptz", lambda s: s.completion_time if s.terminal else None, "archived_at"),
    Column("jsonb NOT NULL", state_json, "state_doc"),
)


def _declared(model: type[BaseModel]) -> Iterator[tuple[str, Column | type[BaseModel]]]:
    """(field, its column or the model whose fields are columns) for each field of ``model``."""
    for field, info in model.model_fields.items():
        column = next((m for m in info.metadata if isinstance(m, Column)), None)
        if column is not None:
            yield field, Column(column.sql, column.value, column.name or field)
        else:
            nested = info.annotation
            assert isinstance(nested, type) and issubclass(nested, BaseModel), f"{model.__name__}.{field}"
            yield field, nested


def _columns(model: type[BaseModel]) -> Iterator[Column]:
    for _, declared in _declared(model):
        if isinstance(declared, Column):
            yield declared
        else:
            yield from _columns(declared)


def _values(model: type[BaseModel], row: Row) -> dict[str, Any]:
    return {
        field: row[declared.name] if isinstance(declared, Column) else _values(declared, row)
        for field, declared in _declared(model)
    }


SUMMARY: tuple[Column, ...] = tuple(_columns(BackupSummary))
COLUMNS: tuple[Column, ...] = SUMMARY + STORED
NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
# What the list and get queries select: the summary's columns, and created_at for the list's cursor.
SUMMARY_COLUMNS = ", ".join([*(c.name for c in SUMMARY), "created_at"])
TABLE_DDL = "CREATE TABLE IF NOT EXISTS backups (\n" + ",\n".join(f"    {c.name:<24}{c.sql}" for c in COLUMNS) + "\n);"
UPSERT = (
    f"INSERT INTO backups ({', '.join(NAMES)}) VALUES ({', '.join(f'${i}' for i in range(1, len(NAMES) + 1))}) "
    f"ON CONFLICT (backup_id) DO UPDATE SET " + ", ".join(f"{n} = EXCLUDED.{n}" for n in NAMES if n != "backup_id")
)
_VALUES = tuple(c.value for c in COLUMNS)


def backup_row(s: BackupState) -> tuple[object, ...]:
    """The row of ``UPSERT`` for this state."""
    return tuple(_pg_safe(value(s)) for value in _VALUES)
