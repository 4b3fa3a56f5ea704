"""The archiver's ``backups`` row is defined once (``lc2backup.archiver.rows``): the table, the upsert, the
selected columns and the API's summary all come from it, so a column cannot be added to one and not the others.
No servers: the real PostgreSQL round trip is in tests/e2e (test_api, test_projector)."""

from __future__ import annotations

import re

from lc2backup.archiver import rows
from lc2backup.archiver.schema import DDL
from lc2backup.domain import events as ev
from tests.k8s.test_projection import COUNTERS, REJECTED, SUCCEEDED, state_after


def _table_columns() -> list[str]:
    body = DDL[DDL.index("CREATE TABLE IF NOT EXISTS backups (") :]
    body = body[body.index("(") + 1 : body.index(");")]
    return [line.split()[0] for line in body.strip().splitlines()]


def test_the_table_the_upsert_and_the_row_have_the_same_columns_in_one_order() -> None:
    names = list(rows.NAMES)
    assert len(set(names)) == len(names)
    assert _table_columns() == names
    inserted = re.search(r"INSERT INTO backups \((.*?)\) VALUES \((.*?)\)", rows.UPSERT)
    assert inserted is not None
    assert inserted.group(1).split(", ") == names
    assert inserted.group(2).split(", ") == [f"${i}" for i in range(1, len(names) + 1)]
    assert len(rows.backup_row(state_after(*SUCCEEDED))) == len(names)
    selected = rows.SUMMARY_COLUMNS.split(", ")
    assert set(selected) <= set(names) and "created_at" in selected


def test_the_summary_read_back_from_a_row_is_the_folded_state() -> None:
    histories = [
        SUCCEEDED,
        SUCCEEDED[:3],
        (REJECTED,),
        (SUCCEEDED[0], ev.DocumentLibraryTransferProgressed(report=1, counters=COUNTERS)),
    ]
    for history in histories:
        state = state_after(*history)
        stored = dict(zip(rows.NAMES, rows.backup_row(state), strict=True))
        summary = rows.BackupSummary.of_row(stored)
        assert summary.backup_id == state.backup_id and summary.state == state.state
        assert (summary.database_state, summary.document_library_state) == (
            state.database.state,
            state.document_library.state,
        )
        assert summary.source.kind == (state.source.kind if state.source else None)
        assert summary.source.name == (state.source.name if state.source else None)
        assert summary.objects_copied == state.document_library.counters.objects_copied
        assert summary.bytes_copied == state.document_library.counters.bytes_copied
        assert summary.objects_excluded == state.document_library.counters.objects_excluded
        export = state.database.export
        assert summary.database_export_bytes == (export.size_bytes if export else None)
        assert (summary.version, summary.event_count) == (state.version, state.event_count)
        assert stored["created_at"] == state.requested_at
        assert stored["archived_at"] == (state.completion_time if state.terminal else None)


def test_text_that_postgresql_cannot_hold_is_stored_replaced() -> None:
    state = state_after(*SUCCEEDED).model_copy(update={"message": "a\x00b"})
    stored = dict(zip(rows.NAMES, rows.backup_row(state), strict=True))
    assert stored["message"] == "a\ufffdb"
    assert "\\u0000" not in str(stored["state_doc"]) and "\\ufffd" in str(stored["state_doc"])
