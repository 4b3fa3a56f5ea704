"""compare_figures names each table a restore got wrong, and nothing when it got them all right."""

from __future__ import annotations

from datetime import UTC, datetime

from lc2backup.domain import DatabaseFigures, TableFigure, compare_figures

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def figures(*tables: tuple[str, int, str]) -> DatabaseFigures:
    """Figures of ``lportal`` from ``(schema.name, rows, checksum)``."""
    return DatabaseFigures(
        database="lportal",
        taken_at=AT,
        tables=[
            TableFigure(schema_name=qualified.split(".")[0], name=qualified.split(".")[1], rows=rows, checksum=sum_)
            for qualified, rows, sum_ in tables
        ],
    )


BACKUP = figures(("public.user_", 13, "-4711"), ("public.group_", 2, "99"), ("liferay.counter", 1, "7"))


def test_equal_figures_have_no_findings() -> None:
    restored = figures(("liferay.counter", 1, "7"), ("public.group_", 2, "99"), ("public.user_", 13, "-4711"))
    assert compare_figures(BACKUP, restored) == []


def test_a_table_missing_from_the_restore_is_named() -> None:
    restored = figures(("public.user_", 13, "-4711"), ("liferay.counter", 1, "7"))
    assert compare_figures(BACKUP, restored) == [
        "table public.group_: missing from the restore (2 rows at backup time)"
    ]


def test_a_table_the_backup_did_not_have_is_named() -> None:
    restored = figures(*[(t.qualified, t.rows, t.checksum) for t in BACKUP.tables], ("public.extra", 0, "0"))
    assert compare_figures(BACKUP, restored) == ["table public.extra: not in the backup (0 rows restored)"]


def test_a_different_row_count_is_named_with_both_counts() -> None:
    restored = figures(("public.user_", 12, "-4711"), ("public.group_", 2, "99"), ("liferay.counter", 1, "7"))
    assert compare_figures(BACKUP, restored) == ["table public.user_: 12 rows restored, 13 at backup time"]


def test_a_different_checksum_with_the_same_count_is_named() -> None:
    restored = figures(("public.user_", 13, "-4712"), ("public.group_", 2, "99"), ("liferay.counter", 1, "7"))
    assert compare_figures(BACKUP, restored) == ["table public.user_: row checksum differs (same row count 13)"]


def test_findings_come_sorted_by_table() -> None:
    restored = figures(("public.user_", 1, "0"), ("public.aaa", 1, "0"), ("liferay.counter", 1, "8"))
    assert compare_figures(BACKUP, restored) == [
        "table liferay.counter: row checksum differs (same row count 1)",
        "table public.aaa: not in the backup (1 rows restored)",
        "table public.group_: missing from the restore (2 rows at backup time)",
        "table public.user_: 1 rows restored, 13 at backup time",
    ]


def test_figures_travel_in_camel_case_and_read_back_equal() -> None:
    wire = BACKUP.model_dump_json(by_alias=True)
    assert '"schemaName":"public"' in wire and '"takenAt":' in wire and '"schemaVersion":1' in wire
    assert DatabaseFigures.model_validate_json(wire) == BACKUP
    assert sorted(BACKUP.by_table()) == ["liferay.counter", "public.group_", "public.user_"]
