"""``lc2backup watch``'s live view at 80 columns, rendered from states folded out of real events.

The view is what rich draws on a terminal of 80 columns (``Console(width=80)``); the states come from
``lc2backup.domain.evolve`` over the events a local backup records, dumped as the projection API serves them.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lc2backup.cli.watching import RateMeter, progress_view
from lc2backup.domain import events as ev
from lc2backup.domain import evolve, initial, parse_spec
from lc2backup.domain.events import TransferCounters
from tests.cli.helpers import backup_id_in, lc2, write_manifest
from tests.support import System, local_spec

BACKUP_ID = "845e0857-a7e5-5d2e-ae84-44c355dff9b9"
MIB = 1024 * 1024
ROOT = f"s3://lc2-backups/retail/dev/{BACKUP_ID}/"


def _doc(events: list[Any], started: datetime) -> dict[str, Any]:
    """The API's BackupDetail for these events, the first at ``started``, one a second after."""
    state = initial(BACKUP_ID)
    for n, event in enumerate(events, start=1):
        state = evolve(state, event, started + timedelta(seconds=n - 1), n)
    status = state.model_dump(mode="json", by_alias=True)
    return {
        "backupId": BACKUP_ID,
        "projectId": state.project_id,
        "environment": state.environment,
        "state": state.state,
        "requestedAt": status["requestedAt"],
        "startTime": status["startTime"],
        "completionTime": status["completionTime"],
        "status": status,
    }


def _running(started: datetime, *, percent: int | None = None, listing_complete: bool = False) -> dict[str, Any]:
    spec = parse_spec(local_spec("liferay-dl", "lc2-backups", instance="liferay-local", prefix="retail/dev/"))
    counters = TransferCounters(
        objects_found=240,
        objects_copied=90,
        bytes_copied=6 * MIB,
        objects_excluded=60,
        listing_complete=listing_complete,
    )
    return _doc(
        [
            ev.BackupRequested(spec=spec, source=ev.RequestSource(kind="api")),
            ev.BackupAdmitted(),
            ev.DatabaseExportStarted(
                operation_id="op", location=f"{ROOT}database/lportal.dump", format="postgresql-custom", restorable=True
            ),
            ev.DocumentLibraryTransferStarted(
                job_id="job",
                method="s3-copy",
                source="s3://liferay-dl/",
                destination=f"{ROOT}documentlibrary/",
                exclude_generated_files=True,
            ),  # fmt: skip
            # the dump so far: 30 MiB compressed out of a 100 MiB database (the old view said "30%")
            ev.DatabaseExportProgressed(
                report=1, bytes_written=30 * MIB, estimated_total_bytes=100 * MIB, percent=percent
            ),
            ev.DocumentLibraryTransferProgressed(report=1, counters=counters),
        ],
        started,
    )


def _render(view: Any) -> list[str]:
    console = Console(width=80, record=True, color_system=None, force_terminal=True)
    console.print(view)
    return console.export_text().splitlines()


def _block(lines: list[str], label: str) -> list[str]:
    """The branch's line (starting with its label) and the line below it."""
    at = next(i for i, line in enumerate(lines) if line.startswith(label))
    return lines[at : at + 2]


def test_at_80_columns_labels_are_whole_and_the_dump_shows_no_made_up_percentage() -> None:
    started = datetime.now(UTC) - timedelta(seconds=75)
    lines = _render(progress_view(BACKUP_ID, _running(started), 0.0))
    print("\n".join(lines))
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]
    assert "…" not in "\n".join(lines)  # nothing cut short: no 'dat…', no 'doc…'
    assert any(BACKUP_ID in line for line in lines)
    database = _block(lines, "database ")
    assert "ExportInProgress" in database[0] and "%" not in " ".join(database)
    assert "30.0 MiB written" in database[1] and "from a 100.0 MiB database" in database[1]
    library = _block(lines, "document library ")
    assert "TransferInProgress" in library[0]
    assert "%" not in library[0]  # still listing: the number of objects to copy is not known yet
    assert "90/180+ objects copied" in library[1]
    # the backup's own duration (its first branch started 73 s ago), not the watcher's 0.0 s
    summary = next(line for line in lines if line.startswith("retail/dev"))
    assert "0.0s" not in summary and ("1m13s" in summary or "1m14s" in summary), summary


def test_percentages_shown_are_the_providers_own_or_counted() -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    lines = _render(progress_view(BACKUP_ID, _running(started, percent=42, listing_complete=True), 5.0))
    database, library = _block(lines, "database "), _block(lines, "document library ")
    assert database[0].rstrip().endswith("42%") and "42% exported" in database[1]
    assert library[0].rstrip().endswith("50%") and "90/180 objects copied" in library[1]  # listing complete


def test_the_rate_is_measured_from_what_the_watcher_saw() -> None:
    meter = RateMeter()
    assert meter.observe(None, 0.0) is None
    assert meter.observe(10 * MIB, 1.0) is None  # one value: no rate yet
    assert meter.observe(10 * MIB, 1.5) is None
    assert meter.observe(18 * MIB, 3.0) == 4 * MIB
    assert meter.observe(30 * MIB, 5.0) == 5 * MIB  # averaged since the first value seen
    assert meter.observe(2 * MIB, 6.0) is None  # the dump restarted (redelivery): measured afresh
    started = datetime.now(UTC) - timedelta(seconds=5)
    lines = _render(progress_view(BACKUP_ID, _running(started), 5.0, db_rate=5 * MIB))
    assert "30.0 MiB written, 5.0 MiB/s, from a 100.0 MiB database" in _block(lines, "database ")[1]


CURSOR = re.compile(r"\x1b\[[0-9;?]*[ABCDEFGHJKfhl]")  # moves and erases: a redraw starts a new line
STYLE = re.compile(r"\x1b\[[0-9;]*m|\x1b\][^\x07]*\x07")


@pytest.mark.e2e
def test_watch_on_an_80_column_terminal_against_the_real_services(
    system: System, seeded: tuple[str, str], tmp_path: Path
) -> None:
    """``lc2backup watch`` as its own process on a pseudo-terminal of 80 columns, following a real backup."""
    source, destination = seeded
    manifest = write_manifest(tmp_path / "m.yaml", system.spec(source, destination), name="narrow")
    applied = lc2("apply", "-f", str(manifest), "--api", system.api)
    assert applied.exit_code == 0, applied.output
    backup_id = backup_id_in(applied.stdout)

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 80, 0, 0))
    env = {**os.environ, "LC2_API_TOKEN": system.api_token, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lc2backup.cli", "watch", backup_id, "--api", system.api, "--timeout", "120"],
        stdin=child, stdout=child, stderr=child, env=env, close_fds=True,
    )  # fmt: skip
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the watcher exited and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=30) == 0
    raw = b"".join(chunks).decode(errors="replace")
    screen = STYLE.sub("", CURSOR.sub("\n", raw)).replace("\r", "\n")
    lines = [line for line in screen.split("\n") if line.strip()]
    print("\n".join(lines[-8:]))
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    # the only ellipses are the shortened sha256 (by design) and "waiting … projection…": nothing cut short
    cut = [m.group() for m in re.finditer(r"\S+…", screen) if not re.fullmatch(r"[0-9a-f]{12}…|projection…", m.group())]
    assert cut == [], cut
    assert any(line.startswith("database ") and "Completed" in line for line in lines), screen
    assert any(line.startswith("document library ") and "Completed" in line for line in lines), screen
    assert any("32/32 objects copied" in line for line in lines), screen
    assert "Succeeded in" in screen


def test_unknown_counters_are_shown_as_unknown_never_as_zero() -> None:
    """A managed transfer fills only some counters: the others are null in the API, '?' on screen."""
    from lc2backup.cli.rendering import counters_summary

    unknown = TransferCounters(objects_found=10, objects_copied=4).model_dump(mode="json", by_alias=True)
    assert counters_summary(unknown) == "4/10+ objects copied (?), ? generated files skipped (?)"
    assert counters_summary(TransferCounters().model_dump(mode="json", by_alias=True)).startswith("?/?+ objects")


def test_a_transfer_with_nothing_counted_yet_says_so() -> None:
    from lc2backup.cli.rendering import document_library_line

    nothing = TransferCounters().model_dump(mode="json", by_alias=True)
    status = {"documentLibrary": {"state": "TransferInProgress", "counters": nothing}}
    assert document_library_line(status) == "transfer started, nothing counted yet"
    some = TransferCounters(objects_found=10).model_dump(mode="json", by_alias=True)
    status = {"documentLibrary": {"state": "TransferInProgress", "counters": some}}
    assert document_library_line(status).startswith("?/10+ objects copied")
