"""``lc2backup restore --from BACKUP`` and ``verify BACKUP``: ask the projection API for a restore, and follow it.

Targets are new by default (a database and a document-library prefix of the restore's own); replacing a live
database takes ``--overwrite-confirm`` naming it, copying into a live prefix ``--merge``. The request is
validated here, with the domain's own ``parse_restore_spec``, before anything is sent; the restorer checks the
rest against the backup's log and the stores, and refuses (``Rejected``) with every problem and its field,
which ``--watch`` prints with the option that sets it. The id comes back at once; ``--watch`` follows the
restore to its end, like ``watch`` a backup: exit 0 Succeeded (and, for a verification, passed), 1 Failed or
Rejected, 3 on timeout.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from lc2backup.cli.client import ProjectionApi
from lc2backup.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, InvalidInput, handle_errors
from lc2backup.cli.locating import api_url
from lc2backup.cli.options import ApiOption, IntervalOption, TimeoutOption
from lc2backup.cli.rendering import duration_of, human_duration, make_console, problems_section
from lc2backup.cli.restoreview import (
    database_restore_line,
    document_library_restore_line,
    restore_progress_line,
    restore_progress_view,
    verdict_view,
)
from lc2backup.cli.watching import Watched, poll
from lc2backup.domain import Problem, SpecInvalid
from lc2backup.domain.restore_state import RESTORE_TERMINAL
from lc2backup.domain.restoring import parse_restore_spec

# the request's fields, as the API and the restorer name them in problems, and the option of `restore` setting each
OPTION_OF = {
    "spec.backupId": "--from",
    "spec.target.projectId": "--project",
    "spec.target.environment": "--environment",
    "spec.include": "--include",
    "spec.database.instanceId": "--instance",
    "spec.database.databaseName": "--database-name",
    "spec.database.overwrite.confirm": "--overwrite-confirm",
    "spec.documentLibrary.bucket": "--bucket",
    "spec.documentLibrary.prefix": "--prefix",
    "spec.documentLibrary.merge": "--merge",
}
CONFIRM_HINT = (
    "a live target is replaced only when named: --overwrite-confirm <instance>/<database> for a database,"
    " --merge for a document-library prefix"
)


class Include(StrEnum):
    everything = "all"
    database = "database"
    document_library = "documentLibrary"


WatchOption = Annotated[bool, typer.Option("--watch", "-w", help="Follow the restore until it ends")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the restore id (with --watch: no progress)")
]
KeyOption = Annotated[
    str | None,
    typer.Option("--idempotency-key", help="Sending the same key again names the same restore", show_default=False),
]


def with_options(problems: list[dict[str, Any]], options: Mapping[str, str]) -> list[dict[str, Any]]:
    """The problems, each field followed by the option that sets it, where there is one."""
    return [
        {**p, "field": f"{p['field']} ({options[p['field']]})"} if p.get("field") in options else p for p in problems
    ]


def restore_request(
    api: ProjectionApi,
    backup_id: str,
    *,
    target: tuple[str | None, str | None],
    include: Include,
    database: dict[str, Any],
    document_library: dict[str, Any],
) -> dict[str, Any]:
    """The RestoreRequest spec of the options, checked by the domain's own parser; only what was given is set.

    A target given by one half only takes the other from the backup: ``--environment qa`` is the backup's
    project, in qa."""
    raw: dict[str, Any] = {"backupId": backup_id}
    project, environment = target
    if (project is None) != (environment is None):
        backup = api.get(backup_id)
        project, environment = project or backup.get("projectId"), environment or backup.get("environment")
    if project is not None or environment is not None:
        raw["target"] = {"projectId": project, "environment": environment}
    if include is not Include.everything:
        raw["include"] = include.value
    for key, section in (("database", database), ("documentLibrary", document_library)):
        given = {name: value for name, value in section.items() if value not in (None, False)}
        if given:
            raw[key] = given
    try:
        parse_restore_spec(raw)
    except SpecInvalid as invalid:
        problems = with_options([p.model_dump() for p in invalid.problems], OPTION_OF)
        raise InvalidInput(
            "the restore request is invalid; nothing was sent", [Problem.model_validate(p) for p in problems]
        ) from invalid
    return raw


def follow_restore(
    api: ProjectionApi, restore_id: str, console: Console, *, timeout: float, interval: float = 0.5
) -> Watched:
    return poll(
        lambda: api.find_restore(restore_id),
        console,
        view=lambda doc, elapsed: restore_progress_view(restore_id, doc, elapsed),
        line=restore_progress_line,
        terminal=RESTORE_TERMINAL,
        timeout=timeout,
        interval=interval,
    )


def report_restore(
    console: Console, err: Console, restore_id: str, watched: Watched, timeout: float, options: Mapping[str, str]
) -> int:
    """Print how the restore ended: where it restored, a verification's verdict, every problem or reason (with
    what the failed restore left behind); returns the exit code."""
    doc = watched.doc
    if not watched.finished or doc is None:
        state = doc.get("state") if doc else "not found"
        err.print(f"[yellow]timed out[/] after {human_duration(timeout)}: restore {restore_id} is {state}")
        return EXIT_TIMEOUT
    status = doc.get("status") or {}
    verification = status.get("verification")
    if verification:
        console.print(verdict_view(verification))
    if doc["state"] == "Succeeded" and (verification is None or verification.get("passed")):
        console.print(f"[bold green]Succeeded[/] in {human_duration(duration_of(status))}")
        if verification is None:
            db, dl = status.get("database") or {}, status.get("documentLibrary") or {}
            console.print(f"  database          {database_restore_line(db)}", markup=False, highlight=False)
            console.print(f"  document library  {document_library_restore_line(dl)}", markup=False, highlight=False)
        for removed in status.get("scratchRemoved") or []:
            console.print(f"  scratch removed   {removed}", markup=False, highlight=False)
        return EXIT_OK
    problems, reasons = status.get("problems") or [], status.get("reasons") or {}
    err.print(f"[bold red]{doc['state']}[/]" + ("" if problems or reasons else f": {escape(doc.get('message') or '')}"))
    for branch, reason in reasons.items():
        err.print(f"  {escape(branch)}: {escape(reason)}", highlight=False)
    for leftover in status.get("leftovers") or []:
        err.print(f"  left behind: {escape(leftover)}", highlight=False)
    if problems:
        err.print(problems_section(with_options(problems, options)))
        if any(p.get("type") == "confirmation" for p in problems):
            err.print(f"[dim]{escape(CONFIRM_HINT)}[/]")
    return EXIT_FAILED


def _accepted(console: Console, quiet: bool, what: str, restore_id: str, api: str | None) -> None:
    if quiet:  # for shell scripts: RESTORE_ID=$(lc2backup restore --from ... -q)
        sys.stdout.write(f"{restore_id}\n")
        return
    console.print(what, highlight=False, markup=False)
    console.print(f"  restore id  [bold]{restore_id}[/]", highlight=False)
    flag = f" --api {api}" if api else ""
    console.print(f"  follow it   lc2backup get-restore {restore_id} --watch{flag}", highlight=False, markup=False)


def _watch_to_the_end(
    client: ProjectionApi, restore_id: str, quiet: bool, timeout: float, interval: float, options: Mapping[str, str]
) -> int:
    console = Console(quiet=True) if quiet else make_console()
    watched = follow_restore(client, restore_id, console, timeout=timeout, interval=interval)
    return report_restore(console, make_console(stderr=True), restore_id, watched, timeout, options)


@handle_errors
def restore(
    backup_id: Annotated[str, typer.Option("--from", help="The Succeeded backup to restore", show_default=False)],
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Restore into this project (default: the backup's)")
    ] = None,
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Restore into this environment (default: the backup's)")
    ] = None,
    include: Annotated[Include, typer.Option(help="Restore both, or only one of them")] = Include.everything,
    instance: Annotated[str | None, typer.Option(help="Instance to restore into (default: the backup's)")] = None,
    database_name: Annotated[
        str | None, typer.Option(help="Database to create (default: <source>_r<8 hex of the restore id>)")
    ] = None,
    overwrite_confirm: Annotated[
        str | None,
        typer.Option(help="Replace a live database: name it exactly, <instance>/<database>", show_default=False),
    ] = None,
    bucket: Annotated[str | None, typer.Option(help="Bucket to copy into (default: the backup's source)")] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Prefix to copy under (default: <source prefix>.restore-<8 hex>/)")
    ] = None,
    merge: Annotated[bool, typer.Option("--merge", help="Copy into a prefix that already holds objects")] = False,
    idempotency_key: KeyOption = None,
    watch: WatchOption = False,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 0.5,
    quiet: QuietOption = False,
    api: ApiOption = None,
) -> None:
    """Restore a Succeeded backup, into new targets unless told otherwise (exit 0 with --watch: Succeeded)."""
    console = make_console()
    with ProjectionApi(api_url(api)) as client:
        spec = restore_request(
            client,
            backup_id,
            target=(project, environment),
            include=include,
            database={
                "instanceId": instance,
                "databaseName": database_name,
                "overwrite": {"confirm": overwrite_confirm} if overwrite_confirm else None,
            },
            document_library={"bucket": bucket, "prefix": prefix, "merge": merge},
        )
        restore_id: str = client.request_restore(spec, idempotency_key)["restoreId"]
        target = spec.get("target")
        into = f"{target['projectId']}/{target['environment']}" if target else "its own environment"
        _accepted(console, quiet, f"restore of backup {backup_id} into {into} requested", restore_id, api)
        if watch:
            raise typer.Exit(_watch_to_the_end(client, restore_id, quiet, timeout, interval, OPTION_OF))


@handle_errors
def verify(
    backup_id: Annotated[str, typer.Argument(help="The Succeeded backup to prove")],
    keep_failed_hours: Annotated[
        int, typer.Option(min=0, max=720, help="A failed verification's scratch targets are kept this long")
    ] = 24,
    idempotency_key: KeyOption = None,
    watch: WatchOption = False,
    timeout: TimeoutOption = 3600.0,
    interval: IntervalOption = 0.5,
    quiet: QuietOption = False,
    api: ApiOption = None,
) -> None:
    """Prove a backup restores: into scratch targets, compared with what it recorded, then removed (exit 0 with
    --watch: it passed)."""
    console = make_console()
    with ProjectionApi(api_url(api)) as client:
        restore_id: str = client.verify(backup_id, idempotency_key, keep_failed_hours)["restoreId"]
        _accepted(console, quiet, f"verification of backup {backup_id} requested", restore_id, api)
        if watch:
            raise typer.Exit(_watch_to_the_end(client, restore_id, quiet, timeout, interval, {}))
