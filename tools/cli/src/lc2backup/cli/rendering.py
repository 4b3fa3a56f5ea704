"""How backups look on a terminal: sizes, durations, states, the backup table, a backup, its events.

Everything takes the projection API's JSON (camelCase, as documented in ``contracts/openapi.json``) and
returns rich renderables or plain strings. ``make_console`` is the one place consoles are made: output that
is not a terminal (a pipe, a CI log) gets a wide fixed width instead of rich's 80 columns, so tables and
ids are not folded in the middle.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lc2backup.domain import events as ev

STATE_STYLES = {
    "Succeeded": "bold green",
    "Completed": "green",
    "Failed": "bold red",
    "Rejected": "bold red",
    "Cancelled": "magenta",
    "Pending": "dim",
    "Skipped": "dim",
    "Passed": "bold green",  # a verification's verdict
}
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
PIPE_WIDTH = 160


def make_console(*, stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


def human_bytes(size: int | float | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in UNITS:
        if abs(value) < 1024 or unit == UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local_time(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S") if parsed else "-"


def short_time(value: Any) -> str:
    """The local time without the year, for table cells."""
    parsed = parse_time(value)
    return parsed.astimezone().strftime("%m-%d %H:%M:%S") if parsed else "-"


def duration_of(doc: dict[str, Any], now: datetime | None = None) -> float | None:
    """Seconds from start (or request) to completion, or to ``now`` while the backup runs."""
    start = parse_time(doc.get("startTime")) or parse_time(doc.get("requestedAt"))
    if start is None:
        return None
    end = parse_time(doc.get("completionTime")) or now
    return (end - start).total_seconds() if end else None


def styled_state(state: str | None) -> Text:
    state = state or "-"
    return Text(state, style=STATE_STYLES.get(state, "yellow"))


def backups_table(items: list[dict[str, Any]], width: int = PIPE_WIDTH) -> Table:
    """The backup list; on narrow terminals the message, then the provider, make room for the full id."""
    columns = ["ID", "PROJECT", "ENV", "PROVIDER", "STATE", "DB", "DOCLIB", "STARTED", "DURATION", "MESSAGE"]
    if width < 150:
        columns.remove("MESSAGE")
    if width < 125:
        columns.remove("PROVIDER")
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in columns:
        if column == "MESSAGE":
            table.add_column(column, overflow="fold", min_width=16, ratio=1)
        elif column == "DURATION":
            table.add_column(column, no_wrap=True, justify="right")
        else:
            table.add_column(column, no_wrap=True, min_width=36 if column == "ID" else None)
    now = datetime.now(UTC)
    for item in items:
        running = item.get("state") not in ("Succeeded", "Failed", "Rejected")
        duration = human_duration(duration_of(item, now))
        cells: dict[str, str | Text] = {
            "ID": item["backupId"],
            "PROJECT": item.get("projectId") or "-",
            "ENV": item.get("environment") or "-",
            "PROVIDER": item.get("provider") or "-",
            "STATE": styled_state(item.get("state")),
            "DB": styled_state(item.get("databaseState")),
            "DOCLIB": styled_state(item.get("documentLibraryState")),
            "STARTED": short_time(item.get("startTime") or item.get("requestedAt")),
            "DURATION": f"{duration}…" if running and duration != "-" else duration,
            "MESSAGE": escape(item.get("message") or ""),
        }
        table.add_row(*(cells[column] for column in columns))
    return table


def database_line(status: dict[str, Any], rate: float | None = None) -> str:
    """The database branch in one line. ``rate``: bytes per second the watcher measured, if it did.

    No percentage from bytes: a local dump is compressed as it streams, so its final size is unknown and the
    database's size (``estimatedTotalBytes``) is no total for it; only a provider's own percentage is shown.
    """
    db = status.get("database") or {}
    export = db.get("export") or {}
    state = db.get("state", "Pending")
    if state == "Failed":
        return f"failed: {db.get('failure') or 'no reason recorded'}"
    if state == "Cancelled":
        return f"cancelled: {db.get('cancellation') or 'no reason recorded'}"
    if state == "Completed":
        sha = (export.get("sha256") or "")[:12]
        return f"{human_bytes(export.get('sizeBytes'))} written" + (f", sha256 {sha}…" if sha else "")
    if state == "SnapshotInProgress":
        return f"snapshot {(db.get('snapshot') or {}).get('snapshotId', '')} in progress"
    if state == "ExportInProgress":
        written, source, percent = export.get("bytesWritten"), export.get("estimatedTotalBytes"), export.get("percent")
        parts = [f"{percent}% exported"] if percent is not None else []
        if written is not None:
            parts.append(f"{human_bytes(written)} written")
        if rate:
            parts.append(f"{human_bytes(rate)}/s")
        if source and percent is None:
            parts.append(f"from a {human_bytes(source)} database")
        return ", ".join(parts) or "export started"
    return "waiting"


def document_library_line(status: dict[str, Any]) -> str:
    dl = status.get("documentLibrary") or {}
    state = dl.get("state", "Pending")
    if state == "Failed":
        return f"failed: {dl.get('failure') or 'no reason recorded'}"
    if state == "Pending":
        return "waiting"
    if state == "Cancelled":
        copied = (dl.get("counters") or {}).get("objectsCopied", 0)
        return f"cancelled after {copied} objects copied: {dl.get('cancellation') or 'no reason recorded'}"
    counters = dl.get("counters") or {}
    if all(value is None for key, value in counters.items() if key != "listingComplete"):
        return "transfer started, nothing counted yet"
    return counters_summary(counters)


def counters_summary(c: dict[str, Any]) -> str:
    """The copy's counters; one the provider cannot fill (null: unknown) is shown as ``?``, never as 0."""

    def count(key: str) -> str:
        value = c.get(key)
        return "?" if value is None else str(value)

    def size(key: str) -> str:
        value = c.get(key)
        return "?" if value is None else human_bytes(value)

    # found counts every listed object; the generated files among them are skipped, not copied
    found, excluded = c.get("objectsFound"), c.get("objectsExcluded")
    to_copy = "?" if found is None else str(found - (excluded or 0))
    to_copy += "" if c.get("listingComplete") else "+"
    text = f"{count('objectsCopied')}/{to_copy} objects copied ({size('bytesCopied')})"
    text += f", {count('objectsExcluded')} generated files skipped ({size('bytesExcluded')})"
    if c.get("objectsVanished"):
        text += f", {c['objectsVanished']} vanished"
    return text


def section(title: str, state: str | None, rows: list[tuple[str, str]]) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        if value:
            grid.add_row(key, escape(value))
    heading = Text.assemble((title, "bold"), "  ", styled_state(state) if state else "")
    return Group(heading, grid, Text(""))


def backup_view(doc: dict[str, Any]) -> RenderableType:
    status = doc.get("status") or {}
    source = doc.get("source") or {}
    origin = source.get("kind") or "-"
    if source.get("name"):
        origin += f" ({source.get('namespace') or 'default'}/{source['name']})"
    metadata = doc.get("metadataLocation") or ""
    if metadata and status.get("metadataSha256"):
        metadata += f"  sha256 {status['metadataSha256'][:12]}…"
    spec = status.get("spec") or {}
    tags = ", ".join(f"{k}={v}" for k, v in (spec.get("tags") or {}).items())
    overview = section(
        f"Backup {doc['backupId']}",
        doc.get("state"),
        [
            ("environment", f"{doc.get('projectId') or '-'}/{doc.get('environment') or '-'} on {doc.get('provider')}"),
            ("message", doc.get("message") or ""),
            ("source", origin),
            ("requested", local_time(doc.get("requestedAt"))),
            ("started", local_time(doc.get("startTime"))),
            ("completed", local_time(doc.get("completionTime")) if doc.get("completionTime") else ""),
            ("duration", human_duration(duration_of(doc, datetime.now(UTC)))),
            ("retention", f"{spec['retentionDays']} days" if spec.get("retentionDays") else ""),
            ("tags", tags),
            ("metadata", metadata),
            ("left behind", ", ".join(status.get("leftovers") or [])),
            ("events", f"{doc.get('eventCount', 0)} (last sequence {doc.get('version', 0)})"),
        ],
    )
    parts: list[RenderableType] = [overview, _database_section(status), _document_library_section(status)]
    problems = status.get("problems") or []
    if problems:
        parts.append(problems_section(problems))
    return Group(*parts)


def problems_section(problems: list[dict[str, Any]]) -> RenderableType:
    """Every problem of a rejected request, with the field it concerns."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    for p in problems:
        grid.add_row(escape(p.get("field", "")), escape(p.get("message", "")))
    return Group(Text("Problems", style="bold red"), grid)


def _database_section(status: dict[str, Any]) -> RenderableType:
    db = status.get("database") or {}
    export = db.get("export") or {}
    snapshot = db.get("snapshot") or {}
    engine = " ".join(x for x in (db.get("engine"), db.get("engineVersion")) if x)
    kind = f"{export.get('format')}, {'restorable' if export.get('restorable') else 'not restorable'}"
    return section(
        "Database",
        db.get("state"),
        [
            ("progress", database_line(status)),
            ("snapshot", snapshot.get("snapshotId", "") + (f" ({snapshot['status']})" if snapshot else "")),
            ("export", f"{export['location']}  ({kind})" if export.get("location") else ""),
            ("size", human_bytes(export.get("sizeBytes")) if export.get("sizeBytes") is not None else ""),
            ("sha256", export.get("sha256") or ""),
            ("engine", engine),
        ],
    )


def _document_library_section(status: dict[str, Any]) -> RenderableType:
    dl = status.get("documentLibrary") or {}
    transfer = dl.get("transfer") or {}
    route = f"{transfer['source']} -> {transfer['destination']}" if transfer else ""
    excluded = ", ".join(transfer.get("excludedPrefixes") or [])
    return section(
        "Document library",
        dl.get("state"),
        [
            ("progress", document_library_line(status)),
            ("copy", route + (f"  ({transfer['method']})" if transfer.get("method") else "")),
            ("excluded", excluded),
            ("manifest", transfer.get("manifestLocation") or ""),
        ],
    )


def event_summary(event_type: str, data: dict[str, Any]) -> str:
    spec = data.get("spec") or {}
    source = data.get("source") or {}
    match event_type:
        case ev.BackupRequested.event_type:
            return (
                f"{spec.get('projectId')}/{spec.get('environment')} on {spec.get('provider')}, via {source.get('kind')}"
            )
        case ev.BackupRejected.event_type:
            return "; ".join(f"{p.get('field')}: {p.get('message')}" for p in data.get("problems") or [])
        case ev.DatabaseSnapshotStarted.event_type | ev.DatabaseSnapshotCompleted.event_type:
            return str(data.get("snapshotId", ""))
        case ev.DatabaseExportStarted.event_type:
            return f"{data.get('location')} ({data.get('format')})"
        case ev.DatabaseExportProgressed.event_type:
            return database_line({"database": {"state": "ExportInProgress", "export": data}})
        case ev.DatabaseExportCompleted.event_type:
            sha = (data.get("sha256") or "")[:12]
            return f"{human_bytes(data.get('sizeBytes'))} at {data.get('location')}" + (
                f", sha256 {sha}…" if sha else ""
            )
        case ev.DatabaseBranchFailed.event_type:
            return f"{data.get('step')}: {data.get('reason')}"
        case ev.DocumentLibraryTransferStarted.event_type:
            return f"{data.get('source')} -> {data.get('destination')} ({data.get('method')})"
        case ev.DocumentLibraryTransferProgressed.event_type | ev.DocumentLibraryTransferCompleted.event_type:
            return counters_summary(data.get("counters") or {})
        case (
            ev.DocumentLibraryTransferFailed.event_type
            | ev.DocumentLibraryTransferCancelled.event_type
            | ev.DatabaseBranchCancelled.event_type
        ):
            return str(data.get("reason", ""))
        case ev.BackupMetadataWritten.event_type:
            return f"{data.get('location')} ({human_bytes(data.get('sizeBytes'))})"
        case ev.BackupSucceeded.event_type:
            return str(data.get("metadataLocation", ""))
        case ev.BackupFailed.event_type:
            left = ", ".join(data.get("leftovers") or [])
            return f"{data.get('branch')}: {data.get('reason')}" + (f"; left behind: {left}" if left else "")
    scalars = (f"{k}={v}" for k, v in data.items() if isinstance(v, str | int | float | bool))
    return ", ".join(scalars)


def events_table(items: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("SEQ", justify="right", no_wrap=True)
    table.add_column("TIME", no_wrap=True)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("PRODUCER", no_wrap=True)
    table.add_column("SUMMARY", overflow="fold")
    for e in items:
        parsed = parse_time(e.get("occurredAt"))
        when = parsed.astimezone().strftime("%H:%M:%S.%f")[:-3] if parsed else "-"
        failed = e["type"].endswith(("Failed", "Rejected"))
        style = "red" if failed else "green" if e["type"] == ev.BackupSucceeded.event_type else ""
        table.add_row(
            str(e["seq"]),
            when,
            Text(e["type"], style=style),
            e.get("producer", ""),
            escape(event_summary(e["type"], e.get("data") or {})),
        )
    return table
