"""``lc2backup watch``: follow one backup until it ends, with a progress line per branch.

The projection API is polled (every 0.5 s by default); on a terminal a live view is redrawn in place,
otherwise (CI logs, pipes) one line is printed each time the progress changes. The exit code is the
outcome: 0 Succeeded, 1 Failed or Rejected, 3 when the timeout passes first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lc2backup.cli.client import ProjectionApi
from lc2backup.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, Unreachable, handle_errors
from lc2backup.cli.locating import api_url
from lc2backup.cli.options import ApiOption
from lc2backup.cli.rendering import (
    database_line,
    document_library_line,
    duration_of,
    human_duration,
    make_console,
    styled_state,
)
from lc2backup.domain import TERMINAL

MAX_MISSED_POLLS = 20  # tolerate an API restart (~10 s) before giving up


@dataclass(frozen=True)
class Watched:
    doc: dict[str, Any] | None
    finished: bool
    elapsed: float


def _bar(completed: float | None, total: float | None, done: bool) -> ProgressBar:
    if done:
        return ProgressBar(total=1, completed=1, width=24)
    if not total or completed is None:
        return ProgressBar(total=None, completed=0, width=24, pulse=completed is not None)
    return ProgressBar(total=total, completed=min(completed, total), width=24)


def progress_view(backup_id: str, doc: dict[str, Any] | None, elapsed: float) -> RenderableType:
    if doc is None:
        return Text(f"backup {backup_id}: waiting for it to appear in the projection… {human_duration(elapsed)}")
    status = doc.get("status") or {}
    db, dl = status.get("database") or {}, status.get("documentLibrary") or {}
    export, counters = db.get("export") or {}, dl.get("counters") or {}
    header = Text.assemble(
        ("backup ", "dim"),
        backup_id,
        f"  {doc.get('projectId')}/{doc.get('environment')}  ",
        styled_state(doc.get("state")),
        (f"  {human_duration(elapsed)}", "dim"),
    )
    grid = Table.grid(padding=(0, 2))
    for style in ("bold", "", "", ""):
        grid.add_column(style=style, no_wrap=True)
    grid.add_row(
        "database",
        styled_state(db.get("state")),
        _bar(export.get("bytesWritten"), export.get("estimatedTotalBytes"), db.get("state") == "Completed"),
        escape(database_line(status)),
    )
    grid.add_row(
        "document library",
        styled_state(dl.get("state")),
        _bar(
            counters.get("objectsCopied"),
            (counters.get("objectsFound") or 0) - (counters.get("objectsExcluded") or 0),
            dl.get("state") == "Completed",
        ),
        escape(document_library_line(status)),
    )
    return Group(header, grid)


def progress_line(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "waiting for the backup to appear in the projection"
    status = doc.get("status") or {}
    db, dl = status.get("database") or {}, status.get("documentLibrary") or {}
    return (
        f"{doc.get('state')}: database {db.get('state')}: {database_line(status)} | "
        f"document library {dl.get('state')}: {document_library_line(status)}"
    )


def follow(api: ProjectionApi, backup_id: str, console: Console, *, timeout: float, interval: float = 0.5) -> Watched:
    """Poll until the backup is terminal or ``timeout`` passes; show progress on ``console`` meanwhile."""
    started = time.monotonic()
    doc: dict[str, Any] | None = None
    missed = 0
    last_line = ""
    live = Live(console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    if live is not None:
        live.start()
    try:
        while True:
            try:
                doc = api.find(backup_id)
                missed = 0
            except Unreachable:
                missed += 1
                if missed > MAX_MISSED_POLLS:
                    raise
            elapsed = time.monotonic() - started
            if live is not None:
                live.update(progress_view(backup_id, doc, elapsed), refresh=True)
            else:
                line = progress_line(doc)
                if line != last_line:
                    console.print(
                        f"[{human_duration(elapsed):>6}] {line}", markup=False, highlight=False, soft_wrap=True
                    )
                    last_line = line
            if doc is not None and doc.get("state") in TERMINAL:
                return Watched(doc, True, elapsed)
            if elapsed >= timeout:
                return Watched(doc, False, elapsed)
            time.sleep(min(interval, max(timeout - elapsed, 0.0)))
    finally:
        if live is not None:
            live.stop()


def report(console: Console, err: Console, backup_id: str, watched: Watched, timeout: float) -> int:
    """Print the outcome; returns the exit code."""
    doc = watched.doc
    if not watched.finished:
        state = doc.get("state") if doc else "not found"
        err.print(f"[yellow]timed out[/] after {human_duration(timeout)}: backup {backup_id} is {state}")
        return EXIT_TIMEOUT
    assert doc is not None
    status = doc.get("status") or {}
    if doc["state"] == "Succeeded":
        console.print(f"[bold green]Succeeded[/] in {human_duration(duration_of(doc))}")
        if doc.get("metadataLocation"):
            console.print(f"metadata.json: {doc['metadataLocation']}", highlight=False)
        return EXIT_OK
    err.print(f"[bold red]{doc['state']}[/]: {escape(doc.get('message') or 'no reason recorded')}")
    for branch, key in (("database", "database"), ("document library", "documentLibrary")):
        failure = (status.get(key) or {}).get("failure")
        if failure:
            err.print(f"  {branch}: {escape(failure)}")
    for problem in status.get("problems") or []:
        err.print(f"  [cyan]{escape(problem['field'])}[/]  {escape(problem['message'])}")
    return EXIT_FAILED


@handle_errors
def watch(
    backup_id: Annotated[str, typer.Argument(help="The backup id (from apply or list)")],
    timeout: Annotated[float, typer.Option(help="Give up (exit 3) after this many seconds")] = 3600.0,
    interval: Annotated[float, typer.Option(help="Seconds between polls of the API", min=0.1)] = 0.5,
    api: ApiOption = None,
) -> None:
    """Follow a backup until it ends: exit 0 Succeeded, 1 Failed/Rejected, 3 on timeout."""
    console, err = make_console(), make_console(stderr=True)
    with ProjectionApi(api_url(api)) as client:
        watched = follow(client, backup_id, console, timeout=timeout, interval=interval)
    raise typer.Exit(report(console, err, backup_id, watched, timeout))
