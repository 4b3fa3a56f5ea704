"""``lc2backup watch``: follow one backup until it ends, with a progress line per branch.

The projection API is polled (every 0.5 s by default); on a terminal a live view is redrawn in place,
otherwise (CI logs, pipes) one line is printed each time the progress changes. The exit code is the
outcome: 0 Succeeded, 1 Failed or Rejected, 3 when the timeout passes first. The polling (``poll``) and the
branch rows (``branch_view``, ``progress_bar``) serve restores too (``restoring``, ``restoreview``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.padding import Padding
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


@dataclass
class RateMeter:
    """Bytes per second of a growing counter, averaged from the first value this watcher saw to the latest."""

    first: tuple[float, float] | None = None  # (value, monotonic time it was first seen)
    latest: tuple[float, float] | None = None

    def observe(self, value: float | None, now: float) -> float | None:
        if value is None:
            return self.rate
        if self.first is None or value < self.first[0]:  # a dump taken again after a crash starts from zero
            self.first, self.latest = (value, now), None
        elif value != (self.latest or self.first)[0]:
            self.latest = (value, now)
        return self.rate

    @property
    def rate(self) -> float | None:
        if self.first is None or self.latest is None or self.latest[1] <= self.first[1]:
            return None
        return (self.latest[0] - self.first[0]) / (self.latest[1] - self.first[1])


LABEL_WIDTH = 16  # "document library"
STATE_WIDTH = 18  # "TransferInProgress"
BAR_WIDTH = 20
INDENT = LABEL_WIDTH + 2


def progress_bar(completed: float | None, total: float | None, done: bool) -> tuple[ProgressBar, str]:
    """A bar and its percentage when the total is known; a pulsing bar without a number when it is not."""
    if done:
        return ProgressBar(total=1, completed=1, width=BAR_WIDTH), "100%"
    if not total or completed is None:
        return ProgressBar(total=None, completed=0, width=BAR_WIDTH, pulse=completed is not None), ""
    share = min(completed, total) / total
    return ProgressBar(total=total, completed=min(completed, total), width=BAR_WIDTH), f"{int(share * 100)}%"


def branch_view(label: str, state: str | None, progress: tuple[ProgressBar, str], line: str) -> RenderableType:
    """Two lines per branch, so the labels never shrink: name, state and bar; then what it did, wrapped."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, min_width=LABEL_WIDTH, style="bold")
    grid.add_column(no_wrap=True, min_width=STATE_WIDTH)
    grid.add_column(no_wrap=True, width=BAR_WIDTH)
    grid.add_column(no_wrap=True, justify="right", min_width=4)
    grid.add_row(label, styled_state(state), progress[0], progress[1])
    detail = Text(line, overflow="fold")
    return Group(grid, Padding(detail, (0, 0, 0, INDENT)))


def progress_view(
    backup_id: str, doc: dict[str, Any] | None, elapsed: float, *, db_rate: float | None = None
) -> RenderableType:
    """The live view; fits 80 columns. The duration is the backup's own (from its start), not the watcher's."""
    if doc is None:
        return Text(f"backup {backup_id}: waiting for it to appear in the projection… {human_duration(elapsed)}")
    status = doc.get("status") or {}
    db, dl = status.get("database") or {}, status.get("documentLibrary") or {}
    export, counters = db.get("export") or {}, dl.get("counters") or {}
    took = duration_of(doc, datetime.now(UTC))
    header = Text.assemble(("backup ", "dim"), backup_id)
    summary = Text.assemble(
        f"{doc.get('projectId')}/{doc.get('environment')}  ",
        styled_state(doc.get("state")),
        (f"  {human_duration(took if took is not None else elapsed)}", "dim"),
    )
    to_copy = (counters.get("objectsFound") or 0) - (counters.get("objectsExcluded") or 0)
    return Group(
        header,
        summary,
        branch_view(
            "database",
            db.get("state"),
            progress_bar(
                export.get("percent"),
                100 if export.get("percent") is not None else None,
                db.get("state") == "Completed",
            ),
            database_line(status, db_rate),
        ),
        branch_view(
            "document library",
            dl.get("state"),
            # the total is known only once the listing is complete; before, a bar would run ahead of itself
            progress_bar(
                counters.get("objectsCopied"),
                to_copy if counters.get("listingComplete") else None,
                dl.get("state") == "Completed",
            ),
            document_library_line(status),
        ),
    )


def progress_line(doc: dict[str, Any] | None, db_rate: float | None = None) -> str:
    if doc is None:
        return "waiting for the backup to appear in the projection"
    status = doc.get("status") or {}
    db, dl = status.get("database") or {}, status.get("documentLibrary") or {}
    return (
        f"{doc.get('state')}: database {db.get('state')}: {database_line(status, db_rate)} | "
        f"document library {dl.get('state')}: {document_library_line(status)}"
    )


def poll(
    find: Callable[[], dict[str, Any] | None],
    console: Console,
    *,
    view: Callable[[dict[str, Any] | None, float], RenderableType],
    line: Callable[[dict[str, Any] | None], str],
    terminal: Collection[str],
    timeout: float,
    interval: float = 0.5,
) -> Watched:
    """Poll ``find`` until its document's state is in ``terminal`` or ``timeout`` passes. On a terminal
    ``view(doc, elapsed)`` is redrawn in place; elsewhere ``line(doc)`` is printed each time it changes."""
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
                doc = find()
                missed = 0
            except Unreachable:
                missed += 1
                if missed > MAX_MISSED_POLLS:
                    raise
            elapsed = time.monotonic() - started
            if live is not None:
                live.update(view(doc, elapsed), refresh=True)
            else:
                text = line(doc)
                if text != last_line:
                    console.print(
                        f"[{human_duration(elapsed):>6}] {text}", markup=False, highlight=False, soft_wrap=True
                    )
                    last_line = text
            if doc is not None and doc.get("state") in terminal:
                return Watched(doc, True, elapsed)
            if elapsed >= timeout:
                return Watched(doc, False, elapsed)
            time.sleep(min(interval, max(timeout - elapsed, 0.0)))
    finally:
        if live is not None:
            live.stop()


def follow(api: ProjectionApi, backup_id: str, console: Console, *, timeout: float, interval: float = 0.5) -> Watched:
    """Poll until the backup is terminal or ``timeout`` passes; show progress on ``console`` meanwhile."""
    meter = RateMeter()

    def rate(doc: dict[str, Any] | None) -> float | None:
        export = (((doc or {}).get("status") or {}).get("database") or {}).get("export") or {}
        return meter.observe(export.get("bytesWritten"), time.monotonic())

    return poll(
        lambda: api.find(backup_id),
        console,
        view=lambda doc, elapsed: progress_view(backup_id, doc, elapsed, db_rate=rate(doc)),
        line=lambda doc: progress_line(doc, rate(doc)),
        terminal=TERMINAL,
        timeout=timeout,
        interval=interval,
    )


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
