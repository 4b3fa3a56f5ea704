"""Per-table figures of a database: what a restore is checked against.

A dump proves it is the bytes written (its ``.sha256``), not that it holds the rows that were there. The local
provider therefore records, inside the very snapshot ``pg_dump`` reads, each table's row count and an
order-independent checksum of its rows (``<databaseName>.figures.json`` beside the dump); taking the same
figures of a restored database and comparing them says whether the restore holds those rows.

Pure (pydantic only): the figures are taken by ``lc2backup.providers.local.figures``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from lc2backup.domain.wire import WireModel


class TableFigure(WireModel):
    """One table: ``checksum`` is the decimal text of the sum, over its rows, of a 64-bit hash of each row's text."""

    schema_name: str
    name: str
    rows: int = Field(ge=0)
    checksum: str

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.name}"


class DatabaseFigures(WireModel):
    schema_version: int = 1
    database: str
    taken_at: datetime
    tables: list[TableFigure]

    def by_table(self) -> dict[str, TableFigure]:
        """The tables keyed ``schema.name``."""
        return {table.qualified: table for table in self.tables}


def compare_figures(expected: DatabaseFigures, actual: DatabaseFigures) -> list[str]:
    """What differs between the figures taken at backup time and those of a restore; empty when nothing does.

    One finding per table, sorted by table: a table missing from the restore, one the backup did not have, a
    different row count, or the same row count with a different checksum (rows changed, not lost).
    """
    before, after = expected.by_table(), actual.by_table()
    findings: list[str] = []
    for table in sorted(before.keys() | after.keys()):
        was, now = before.get(table), after.get(table)
        if now is None:
            assert was is not None
            findings.append(f"table {table}: missing from the restore ({was.rows} rows at backup time)")
        elif was is None:
            findings.append(f"table {table}: not in the backup ({now.rows} rows restored)")
        elif now.rows != was.rows:
            findings.append(f"table {table}: {now.rows} rows restored, {was.rows} at backup time")
        elif now.checksum != was.checksum:
            findings.append(f"table {table}: row checksum differs (same row count {was.rows})")
    return findings
