"""How restores look on a terminal: the restore table, a restore, its live progress, a verification's verdict.

Like ``rendering`` for backups, everything takes the projection API's JSON (``RestoreSummary``,
``RestoreDetail`` in ``contracts/openapi.json``) and returns rich renderables or plain strings. The live view
is built from ``watching``'s branch rows, so a restore is followed the way a backup is, in 80 columns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lc2backup.cli.rendering import (
    PIPE_WIDTH,
    duration_of,
    human_bytes,
    human_duration,
    local_time,
    problems_section,
    section,
    short_time,
    styled_state,
)
from lc2backup.cli.watching import branch_view, progress_bar


def target_of(doc: dict[str, Any]) -> str:
    project, environment = doc.get("targetProjectId"), doc.get("targetEnvironment")
    return f"{project}/{environment}" if project and environment else "-"


def database_restore_line(db: dict[str, Any]) -> str:
    """The database branch in one line: bytes of the dump read, of its size, and where to."""
    state = db.get("state", "Pending")
    into = f" into {db['target']}" if db.get("target") else ""
    done, total = db.get("bytesDone"), db.get("bytesTotal")
    if state == "Failed":
        return f"failed: {db.get('failure') or 'no reason recorded'}"
    if state == "Skipped":
        return "not restored (include)"
    if state == "Pending":
        return "waiting"
    if done is None:
        return f"restored{into}" if state == "Completed" else f"started{into}"
    of = f" of {human_bytes(total)}" if total and state != "Completed" else ""
    return f"{human_bytes(done)}{of} read{into}"


def document_library_restore_line(dl: dict[str, Any]) -> str:
    """The document library in one line: objects and bytes copied, of those the backup holds, and where to."""
    state = dl.get("state", "Pending")
    into = f" into {dl['target']}" if dl.get("target") else ""
    if state == "Failed":
        return f"failed: {dl.get('failure') or 'no reason recorded'}"
    if state == "Skipped":
        return "not restored (include)"
    if state == "Pending":
        return "waiting"
    done, total, size, size_total = dl.get("done"), dl.get("total"), dl.get("bytesDone"), dl.get("bytesTotal")
    if state == "Completed":
        return f"{done} objects ({human_bytes(size)}) copied{into}"
    objects = f"{done or 0}/{total}" if total is not None else str(done or 0)
    of = f" of {human_bytes(size_total)}" if size_total is not None else ""
    return f"{objects} objects ({human_bytes(size)}{of}) copied{into}"


def restore_progress_view(restore_id: str, doc: dict[str, Any] | None, elapsed: float) -> RenderableType:
    """The live view of a restore or a verification; fits 80 columns."""
    if doc is None:
        return Text(f"restore {restore_id}: waiting for it to appear in the projection… {human_duration(elapsed)}")
    status = doc.get("status") or {}
    db, dl = status.get("database") or {}, status.get("documentLibrary") or {}
    took = duration_of(status, datetime.now(UTC))
    header = Text.assemble((f"{doc.get('purpose') or 'restore'} ", "dim"), restore_id)
    summary = Text.assemble(
        f"{doc.get('projectId')}/{doc.get('environment')} -> {target_of(doc)}  ",
        styled_state(doc.get("state")),
        (f"  {human_duration(took if took is not None else elapsed)}", "dim"),
    )
    return Group(
        header,
        summary,
        branch_view(
            "database",
            db.get("state"),
            progress_bar(db.get("bytesDone"), db.get("bytesTotal"), db.get("state") == "Completed"),
            database_restore_line(db),
        ),
        branch_view(
            "document library",
            dl.get("state"),
            progress_bar(dl.get("done"), dl.get("total"), dl.get("state") == "Completed"),
            document_library_restore_line(dl),
        ),
    )


def restore_progress_line(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "waiting for the restore to appear in the projection"
    status = doc.get("status") or {}
    db, dl = status.get("database") or {}, status.get("documentLibrary") or {}
    return (
        f"{doc.get('state')}: database {db.get('state')}: {database_restore_line(db)} | "
        f"document library {dl.get('state')}: {document_library_restore_line(dl)}"
    )


def restores_table(items: list[dict[str, Any]], width: int = PIPE_WIDTH) -> Table:
    """The restore list; on narrow terminals the message goes first, then the backup id is cut to its first
    8 hex (enough to tell backups apart), then the completion time, so the restore id stays whole."""
    columns = ["ID", "BACKUP", "PURPOSE", "TARGET", "STATE", "CREATED", "COMPLETED", "MESSAGE"]
    if width < 170:
        columns.remove("MESSAGE")
    if width < 125:
        columns.remove("COMPLETED")
    whole_backup_id = width >= 150
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in columns:
        if column == "MESSAGE":
            table.add_column(column, overflow="fold", min_width=16, ratio=1)
        else:
            wide = column == "ID" or (column == "BACKUP" and whole_backup_id)
            table.add_column(column, no_wrap=True, min_width=36 if wide else None)
    for item in items:
        backup_id = item.get("backupId") or "-"
        cells: dict[str, str | Text] = {
            "ID": item["restoreId"],
            "BACKUP": backup_id if whole_backup_id or len(backup_id) <= 9 else f"{backup_id[:8]}…",
            "PURPOSE": item.get("purpose") or "-",
            "TARGET": target_of(item),
            "STATE": styled_state(item.get("state")),
            "CREATED": short_time(item.get("createdAt")),
            "COMPLETED": short_time(item.get("completedAt")),
            "MESSAGE": escape(item.get("message") or ""),
        }
        table.add_row(*(cells[column] for column in columns))
    return table


def compared(summary: dict[str, Any]) -> str:
    return (
        f"{summary.get('tables', 0)} tables, {summary.get('rows', 0)} rows; {summary.get('objects', 0)} objects"
        f" ({human_bytes(summary.get('bytes'))}), {summary.get('objectsSampled', 0)} sampled"
    )


def verdict_view(verification: dict[str, Any]) -> RenderableType:
    """A verification's verdict: what was compared, every check that passed, every finding."""
    return section(
        "Verification",
        "Passed" if verification.get("passed") else "Failed",
        [
            ("compared", compared(verification.get("summary") or {})),
            ("checks", "\n".join(verification.get("checks") or [])),
            ("findings", "\n".join(verification.get("findings") or [])),
            ("at", local_time(verification.get("at"))),
        ],
    )


def restore_view(doc: dict[str, Any]) -> RenderableType:
    status = doc.get("status") or {}
    plan = status.get("plan") or {}
    purpose = doc.get("purpose") or "restore"
    backup = f"{doc.get('backupId') or '-'} of {doc.get('projectId') or '-'}/{doc.get('environment') or '-'}"
    overview = section(
        f"{'Verification' if purpose == 'verification' else 'Restore'} {doc['restoreId']}",
        doc.get("state"),
        [
            ("backup", backup + (f" on {plan['provider']}" if plan.get("provider") else "")),
            ("target", target_of(doc)),
            ("message", doc.get("message") or ""),
            ("source", (status.get("source") or {}).get("kind") or ""),
            ("requested", local_time(doc.get("createdAt"))),
            ("completed", local_time(doc.get("completedAt")) if doc.get("completedAt") else ""),
            ("duration", human_duration(duration_of(status, datetime.now(UTC)))),
            ("left behind", ", ".join(status.get("leftovers") or [])),
            ("scratch removed", ", ".join(status.get("scratchRemoved") or [])),
            ("events", f"{status.get('eventCount', 0)} (last sequence {status.get('version', 0)})"),
        ],
    )
    parts: list[RenderableType] = [overview, _database_section(status), _document_library_section(status)]
    if status.get("verification"):
        parts.append(verdict_view(status["verification"]))
    reasons = status.get("reasons") or {}
    if reasons:
        parts.append(section("Why it failed", None, list(reasons.items())))
    if status.get("problems"):
        parts.append(problems_section(status["problems"]))
    return Group(*parts)


def _database_section(status: dict[str, Any]) -> RenderableType:
    db = status.get("database") or {}
    plan = (status.get("plan") or {}).get("database") or {}
    size = human_bytes(plan["sizeBytes"]) if plan.get("sizeBytes") is not None else None
    about = ", ".join(x for x in (plan.get("kind"), plan.get("format"), size) if x)
    artefact = f"{plan['artefact']}  ({about})" if plan else ""
    into = f"{plan['targetInstance']}/{plan['targetDatabase']}" if plan else ""
    return section(
        "Database",
        db.get("state"),
        [
            ("progress", database_restore_line(db)),
            ("from", artefact),
            ("into", into + ("  (replacing the live database, confirmed)" if plan.get("overwrite") else "")),
            ("sha256", plan.get("sha256") or ""),
            ("figures", plan.get("figures") or ""),
        ],
    )


def _document_library_section(status: dict[str, Any]) -> RenderableType:
    dl = status.get("documentLibrary") or {}
    plan = (status.get("plan") or {}).get("documentLibrary") or {}
    if not plan:
        return section("Document library", dl.get("state"), [("progress", document_library_restore_line(dl))])
    held = f"  ({plan['objects']} objects, {human_bytes(plan.get('bytes'))})" if plan.get("objects") is not None else ""
    return section(
        "Document library",
        dl.get("state"),
        [
            ("progress", document_library_restore_line(dl)),
            ("from", f"{plan['sourceBucket']}/{plan['sourcePrefix']}{held}"),
            ("into", f"{plan['targetBucket']}/{plan['targetPrefix']}" + ("  (merged)" if plan["merge"] else "")),
        ],
    )
