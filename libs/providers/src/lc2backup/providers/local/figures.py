"""Per-table figures of a PostgreSQL database (row count and row checksum), for checking a restore.

``take_figures`` reads every ordinary table once, in the caller's transaction: the dumper calls it in the
transaction whose snapshot ``pg_dump`` then dumps (``--snapshot``), so the figures describe exactly the rows
in the dump; ``figures_of`` takes them of any database, such as a restored one, to compare
(``lc2backup.domain.compare_figures``).

A table's checksum is the sum of the first 64 bits of the MD5 of each row's text: order-independent, so a
restore that loads rows in another order has the same. Row text depends on session settings (dates, time
zone, float digits, bytea), which are fixed for the transaction first, so both sides render rows alike.
Reading every row costs a scan of each table besides the dump's own.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from lc2backup.domain.figures import DatabaseFigures, TableFigure
from lc2backup.providers.errors import PermanentProviderError, ProviderError, TransientProviderError

FIGURES_EXTENSION = "figures.json"

_STABLE_ROW_TEXT = (
    "SET LOCAL DateStyle = 'ISO, MDY'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
)
# Other sessions' temporary tables cannot be read (and pg_dump leaves them out too).
_TABLES = r"""
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY 1, 2
"""
_FIGURE = (
    "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint), 0)::text FROM {table} t"
)
# SQLSTATE classes worth a retry: connection exception, insufficient resources, operator intervention, rollback.
_TRANSIENT_CLASSES = ("08", "53", "57", "40")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def take_figures(conn: asyncpg.Connection, database: str) -> DatabaseFigures:
    """The figures of every ordinary table, read in ``conn``'s open transaction (whose settings this changes)."""
    for statement in _STABLE_ROW_TEXT:
        await conn.execute(statement)
    tables = []
    for schema, name in await conn.fetch(_TABLES):
        table = f"{quote_ident(schema)}.{quote_ident(name)}"
        figure = await conn.fetchrow(_FIGURE.format(table=table))
        assert figure is not None  # an aggregate without GROUP BY returns one row
        tables.append(TableFigure(schema_name=schema, name=name, rows=figure[0], checksum=figure[1]))
    return DatabaseFigures(database=database, taken_at=datetime.now(UTC), tables=tables)


async def connect(dsn: str, password: str | None, database: str) -> asyncpg.Connection:
    """A connection to ``dsn``, its failure translated: unreachable is transient, a missing database permanent."""
    try:
        return await asyncpg.connect(dsn, password=password, timeout=10)
    except (TimeoutError, OSError) as exc:
        raise TransientProviderError(f"database {database} unreachable: {type(exc).__name__}") from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise PermanentProviderError(f"database {database} does not exist") from exc
    except asyncpg.PostgresError as exc:
        raise PermanentProviderError(f"database {database}: {exc}") from exc


def figures_failed(exc: Exception, database: str) -> ProviderError:
    """A failure while taking figures: a lost connection or a busy server is worth a retry, a refusal is not."""
    message = f"figures of database {database}: {type(exc).__name__}: {exc}"
    if isinstance(exc, asyncpg.PostgresError):
        if str(exc.sqlstate or "")[:2] in _TRANSIENT_CLASSES:
            return TransientProviderError(message)
        return PermanentProviderError(message)
    if isinstance(exc, (TimeoutError, OSError, asyncpg.InterfaceError)):
        return TransientProviderError(message)
    return PermanentProviderError(message)


async def figures_of(dsn: str, password: str | None, database: str) -> DatabaseFigures:
    """The figures of the database at ``dsn``, read in one repeatable-read, read-only transaction."""
    conn = await connect(dsn, password, database)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await take_figures(conn, database)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise figures_failed(exc, database) from exc
    finally:
        await close(conn)


async def close(conn: asyncpg.Connection) -> None:
    """Close ``conn``; one the server already dropped (an idle-in-transaction timeout) is just let go."""
    try:
        await conn.close(timeout=10)
    except Exception:
        conn.terminate()
