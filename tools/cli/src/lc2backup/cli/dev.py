"""``lc2backup dev up | down | status``: the local stack behind ``make up``, ``make down`` and ``make status``.

``up`` runs the supervisor (``supervising``) in the foreground, or detached with ``--detach``; ``down`` finds
it through ``<dir>/stack.json``, sends SIGTERM and waits until it and every process it started are gone.
"""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from lc2backup.cli.client import ProjectionApi
from lc2backup.cli.demodata import user_databases
from lc2backup.cli.devstate import (
    children,
    clear_state,
    default_state_dir,
    open_pidfd,
    read_state,
    wait_for_exits,
)
from lc2backup.cli.errors import EXIT_FAILED, StackFailure, handle_errors
from lc2backup.cli.options import StateDirOption
from lc2backup.cli.rendering import make_console
from lc2backup.cli.stackview import stack_view
from lc2backup.cli.supervising import DETACHED_LOG, run_foreground, spawn_detached

app = typer.Typer(help="Run the local stack (NATS, PostgreSQL, SeaweedFS and the five services).", no_args_is_help=True)


def _directory(option: Path | None) -> Path:
    return (option or default_state_dir()).resolve()


@app.command()
@handle_errors
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background; return once ready")] = False,
    directory: StateDirOption = None,
    timeout: Annotated[float, typer.Option(help="With --detach: seconds to wait for readiness")] = 180.0,
) -> None:
    """Start the local stack with a seeded demo environment (state, logs and env file in --dir)."""
    console = make_console()
    where = _directory(directory)
    user_databases()  # an unusable LC2_LOCAL__DATABASES is refused here, not in the background's log
    existing = read_state(where)
    if existing is not None and existing.alive:
        console.print(f"already running (supervisor pid {existing.supervisor_pid})")
        console.print(stack_view(existing))
        return
    if not detach:
        run_foreground(where, console)
        return
    console.print(f"starting the local stack in the background (log: {where / DETACHED_LOG})")
    pid = spawn_detached(where, timeout)
    state = read_state(where)
    assert state is not None
    console.print(stack_view(state, api_ready=_api_ready(state.api_url)))
    console.print(f"running as pid {pid}; stop it with `make down` (lc2backup dev down)")


def _api_ready(url: str | None) -> bool | None:
    if not url:
        return None
    with ProjectionApi(url) as api:
        return api.ready()


@app.command()
@handle_errors
def down(
    directory: StateDirOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait before killing the supervisor")] = 90.0,
) -> None:
    """Stop the stack `dev up --detach` started: services first, then servers."""
    console = make_console()
    where = _directory(directory)
    state = read_state(where)
    if state is None:
        console.print(f"not running (no {where / 'stack.json'})")
        return
    supervisor = state.supervisor_pid
    if supervisor is None or not state.alive:
        console.print(f"not running (stale {state.path}, supervisor pid {supervisor} is gone); cleaned up")
        clear_state(where)
        return
    with ExitStack() as fds_owner:
        # pidfds first: they name these exact processes, so a reused pid can never be mistaken for one of them
        fds = {role: fd for role, pid in children(state).items() if (fd := open_pidfd(pid)) is not None}
        for fd in fds.values():
            fds_owner.callback(os.close, fd)
        console.print(f"stopping the local stack (supervisor pid {supervisor})")
        os.kill(supervisor, signal.SIGTERM)
        left = wait_for_exits({"supervisor": fds["supervisor"]}, timeout) if "supervisor" in fds else []
        if left:
            console.print(f"[yellow]the supervisor did not stop within {timeout:.0f}s: killing it[/]")
            os.kill(supervisor, signal.SIGKILL)  # its children carry PR_SET_PDEATHSIG and follow it
        left = wait_for_exits(fds, 30.0)
    clear_state(where)
    if left:
        raise StackFailure(f"still running after stop: {', '.join(left)}", hint=f"see {where / DETACHED_LOG}")
    console.print("stopped")


@app.command()
@handle_errors
def status(directory: StateDirOption = None) -> None:
    """Show what runs, where, and how to reach it (exit 1 when nothing runs)."""
    console = make_console()
    where = _directory(directory)
    state = read_state(where)
    if state is None:
        console.print(f"not running (no {where / 'stack.json'}); start it with `make up`")
        raise typer.Exit(EXIT_FAILED)
    if not state.alive:
        console.print(f"not running (stale {state.path}: supervisor pid {state.supervisor_pid} is gone)")
        raise typer.Exit(EXIT_FAILED)
    console.print(stack_view(state, api_ready=_api_ready(state.api_url)))
