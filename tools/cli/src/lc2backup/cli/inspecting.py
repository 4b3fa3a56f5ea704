"""``lc2backup list``, ``get``, ``events``, ``restores``, ``get-restore`` and ``restorable``: read the projection
API, as tables for people or raw JSON."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, get_args

import typer

from lc2backup.cli.client import ProjectionApi
from lc2backup.cli.errors import InvalidInput, handle_errors
from lc2backup.cli.locating import api_url
from lc2backup.cli.options import ApiOption, IntervalOption, JsonOption, TimeoutOption
from lc2backup.cli.rendering import backup_view, backups_table, events_table, local_time, make_console
from lc2backup.cli.restoreview import restore_view, restores_table
from lc2backup.cli.restoring import follow_restore, report_restore
from lc2backup.domain import Phase

PHASES: tuple[str, ...] = get_args(Phase)


def print_json(doc: Any) -> None:
    # plain stdout, not rich: the output is for jq and other programs
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@handle_errors
def list_backups(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this projectId")] = None,
    environment: Annotated[str | None, typer.Option("--environment", "-e", help="Only this environment")] = None,
    state: Annotated[str | None, typer.Option("--state", "-s", help=f"Only this state: {', '.join(PHASES)}")] = None,
    limit: Annotated[int, typer.Option(help="Backups per page (1-200)", min=1, max=200)] = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow nextCursor through every page")] = False,
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the backup ids, one a line")] = False,
    api: ApiOption = None,
) -> None:
    """List backups, newest first."""
    if state is not None and state not in PHASES:
        raise InvalidInput(f"--state {state!r} is not a state; use one of {', '.join(PHASES)}")
    filters: dict[str, Any] = {"project_id": project, "environment": environment, "state": state, "limit": limit}
    next_cursor: str | None = None
    with ProjectionApi(api_url(api)) as client:
        if all_pages:
            items = list(client.list_all(**filters))
        else:
            page = client.list_page(**filters)
            items, next_cursor = page["items"], page.get("nextCursor")
    if as_json:
        print_json({"items": items, "nextCursor": next_cursor})
        return
    if quiet:  # for shell scripts: BACKUP_ID=$(lc2backup list -q --limit 1 ...)
        sys.stdout.write("".join(f"{item['backupId']}\n" for item in items))
        return
    console = make_console()
    if not items:
        console.print("no backups" + (" match these filters" if project or environment or state else " yet"))
        return
    console.print(backups_table(items, console.width))
    if next_cursor:
        console.print(f"[dim]{len(items)} shown; more with --all[/]")


@handle_errors
def get(
    backup_id: Annotated[str, typer.Argument(help="The backup id")],
    as_json: JsonOption = False,
    api: ApiOption = None,
) -> None:
    """Show one backup: both branches, artefacts, counters, timings."""
    with ProjectionApi(api_url(api)) as client:
        doc = client.get(backup_id)
    if as_json:
        print_json(doc)
    else:
        make_console().print(backup_view(doc))


@handle_errors
def events(
    backup_id: Annotated[str, typer.Argument(help="The backup id")],
    as_json: JsonOption = False,
    api: ApiOption = None,
) -> None:
    """Show a backup's audit trail: every event in order."""
    with ProjectionApi(api_url(api)) as client:
        items = client.events(backup_id)
    if as_json:
        print_json({"backupId": backup_id, "items": items})
    else:
        make_console().print(events_table(items))


@handle_errors
def list_restores(
    backup: Annotated[str | None, typer.Option("--backup", "-b", help="Only the restores of this backup")] = None,
    limit: Annotated[int, typer.Option(help="Restores to show (1-200)", min=1, max=200)] = 50,
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the restore ids, one a line")] = False,
    api: ApiOption = None,
) -> None:
    """List restores and verifications, newest first."""
    with ProjectionApi(api_url(api)) as client:
        items = client.restores(backup_id=backup, limit=limit)
    if as_json:
        print_json({"items": items})
        return
    if quiet:
        sys.stdout.write("".join(f"{item['restoreId']}\n" for item in items))
        return
    console = make_console()
    if not items:
        console.print("no restores" + (f" of backup {backup}" if backup else " yet"), highlight=False)
        return
    console.print(restores_table(items, console.width))


@handle_errors
def get_restore(
    restore_id: Annotated[str, typer.Argument(help="The restore id (from restore, verify or restores)")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends, then show how")] = False,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 0.5,
    as_json: JsonOption = False,
    api: ApiOption = None,
) -> None:
    """Show one restore or verification: the plan, both branches, the verdict, every problem or reason.

    With --watch, follow it first: exit 0 Succeeded (a verification: passed), 1 Failed/Rejected, 3 on timeout."""
    with ProjectionApi(api_url(api)) as client:
        if watch:
            console = make_console()
            watched = follow_restore(client, restore_id, console, timeout=timeout, interval=interval)
            raise typer.Exit(report_restore(console, make_console(stderr=True), restore_id, watched, timeout, {}))
        doc = client.get_restore(restore_id)
    if as_json:
        print_json(doc)
    else:
        make_console().print(restore_view(doc))


@handle_errors
def restorable(
    project: Annotated[str, typer.Option("--project", "-p", help="The projectId", show_default=False)],
    environment: Annotated[str, typer.Option("--environment", "-e", help="The environment", show_default=False)],
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the backup id (nothing if none)")] = False,
    api: ApiOption = None,
) -> None:
    """Name the environment's last backup proven restorable: the newest a verification restored and found equal."""
    with ProjectionApi(api_url(api)) as client:
        doc = client.restorable(project, environment)
    if as_json:
        print_json(doc)
        return
    backup_id = doc.get("backupId")
    if quiet:
        sys.stdout.write(f"{backup_id}\n" if backup_id else "")
        return
    console = make_console()
    where = f"{doc.get('projectId')}/{doc.get('environment')}"
    if not backup_id:
        console.print(f"{where}: no backup verified yet (`lc2backup verify <backupId> --watch` proves one)")
        return
    console.print(f"{where}: backup [bold]{backup_id}[/] is the last proven restorable", highlight=False)
    console.print(f"  backed up  {local_time(doc.get('backupCompletedAt'))}", highlight=False)
    verified = f"  verified   {local_time(doc.get('verifiedAt'))} by verification {doc.get('restoreId')}"
    console.print(verified, highlight=False, markup=False)
