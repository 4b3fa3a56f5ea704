"""The state a running ``lc2backup dev up`` leaves for the other commands: ``<dir>/stack.json`` and ``<dir>/env``.

``stack.json`` is written atomically (a reader never sees half a file) once everything is ready, and removed
when the supervisor stops. It names the supervisor by pid *and* start time, so a stale file whose pid was
reused by an unrelated process is recognised as stale instead of being signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"
ENV_FILE = "env"
DEFAULT_STATE_DIR = ".lc2"


def default_state_dir() -> Path:
    return Path(os.environ.get("LC2_STATE_DIR") or DEFAULT_STATE_DIR)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its closing ')'
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def is_running(pid: int, ticks: int | None = None) -> bool:
    """True while ``pid`` exists, is not a zombie and, if ``ticks`` is given, is the process that started then."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return ticks is None or int(fields[19]) == ticks


def open_pidfd(pid: int) -> int | None:
    """A descriptor naming this exact process (immune to pid reuse), or None if it is gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def wait_for_exits(fds: Mapping[str, int], timeout: float) -> list[str]:
    """Wait until every process behind ``fds`` (pidfds, by role) has exited; returns the roles still running.

    The processes need not be our children: a pidfd turns readable when its process terminates.
    """
    poller = select.poll()
    pending = {fd: role for role, fd in fds.items()}
    for fd in pending:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for fd, _event in poller.poll(remaining * 1000):
            poller.unregister(fd)
            pending.pop(fd)
    return sorted(pending.values())


@dataclass(frozen=True)
class StackState:
    """What ``stack.json`` says about a running local stack."""

    path: Path
    doc: dict[str, Any]

    @property
    def supervisor_pid(self) -> int | None:
        pid = self.doc.get("supervisor", {}).get("pid")
        return int(pid) if pid is not None else None

    @property
    def ready(self) -> bool:
        return bool(self.doc.get("ready"))

    @property
    def alive(self) -> bool:
        pid = self.supervisor_pid
        return pid is not None and is_running(pid, self.doc.get("supervisor", {}).get("startTicks"))

    @property
    def api_url(self) -> str | None:
        url = self.doc.get("api", {}).get("url")
        return str(url) if url else None

    @property
    def api_token(self) -> str | None:
        token = self.doc.get("api", {}).get("token")
        return str(token) if token else None

    @property
    def env(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.doc.get("env", {}).items()}

    def pids(self) -> dict[str, int]:
        """Every process the stack names, by role: the supervisor, the servers and the services (which may
        have exited since; ``children`` keeps only those still running under this supervisor)."""
        found: dict[str, int] = {}
        if self.supervisor_pid is not None:
            found["supervisor"] = self.supervisor_pid
        for server in ("nats", "postgres", "s3"):
            pid = self.doc.get(server, {}).get("pid")
            if pid is not None:
                found[server] = int(pid)
        for name, svc in self.doc.get("services", {}).items():
            if svc.get("pid") is not None:
                found[name] = int(svc["pid"])
        return found


def children(state: StackState) -> dict[str, int]:
    """The supervisor and those of its servers and services that still run as its children."""
    supervisor = state.supervisor_pid
    return {
        role: pid
        for role, pid in state.pids().items()
        if (role == "supervisor" and state.alive) or (pid != supervisor and parent_pid(pid) == supervisor)
    }


def read_state(directory: Path) -> StackState | None:
    path = directory / STATE_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return StackState(path, doc) if isinstance(doc, dict) else None


def _write_private(path: Path, text: str) -> None:
    """Owner-only (0600): both files hold the stack's API token and NATS admin password."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def write_state(directory: Path, doc: Mapping[str, Any]) -> Path:
    path = directory / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    _write_private(tmp, json.dumps(doc, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def write_env_file(directory: Path, env: Mapping[str, str]) -> Path:
    path = directory / ENV_FILE
    lines = ["# Written by `lc2backup dev up`; use with: source " + shlex.quote(str(path))]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    _write_private(path, "\n".join(lines) + "\n")
    return path


def clear_state(directory: Path) -> None:
    for name in (STATE_FILE, ENV_FILE):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
