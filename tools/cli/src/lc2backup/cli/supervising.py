"""The ``dev up`` supervisor: start the stack, seed the demo environment, run the services, stop in order.

It runs in the foreground (Ctrl-C stops it) or, with ``--detach``, as its own session in the background
(``dev down`` sends it SIGTERM). Either way the same process owns every server and service: they are its
direct children, started from its main thread, so they cannot outlive it. A service that crashes is
restarted, with backoff and without a last attempt (``restarting``), and ``stack.json`` records it down
meanwhile; a server that dies ends the stack, loudly, rather than leaving it half-working.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from lc2backup.cli.demodata import (
    BACKUP_BUCKET,
    INSTANCE_ID,
    SOURCE_BUCKET,
    DemoData,
    prepare,
    services_env,
    shell_env,
    user_databases,
)
from lc2backup.cli.devstate import (
    clear_state,
    is_running,
    read_state,
    start_ticks,
    write_env_file,
    write_state,
)
from lc2backup.cli.errors import StackFailure
from lc2backup.cli.restarting import BACKOFF_FIRST, RESTART_DELAY, ServiceHealth
from lc2backup.cli.signals import Stop, stop_on_signals
from lc2backup.cli.stackview import stack_view
from lc2backup.devstack import LocalStack, ServiceSet, StackError
from lc2backup.devstack.seaweed import ACCESS_KEY, SECRET_KEY

SUPERVISE_INTERVAL = 0.5
DETACHED_LOG = "dev.log"


def _state_doc(
    stack: LocalStack, services: ServiceSet, env: dict[str, str], data: DemoData, health: dict[str, ServiceHealth]
) -> dict[str, Any]:
    pid = os.getpid()
    now = time.monotonic()
    return {
        **stack.describe(),
        "ready": True,
        "startedAt": datetime.now(UTC).isoformat(),
        "supervisor": {"pid": pid, "startTicks": start_ticks(pid), "argv": sys.argv},
        "api": {"url": services.api_url, "docs": f"{services.api_url}/docs", "token": services.api_token},
        "services": {
            name: {
                "pid": svc.pid,
                "url": svc.url,
                "log": str(services.log_dir / f"{name}.log"),
                **(health[name].describe(now) if name in health else {"state": "running", "restarts": 0}),
            }
            for name, svc in services.services.items()
        },
        "s3Credentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY},
        "demo": {
            "instanceId": INSTANCE_ID,
            "database": data.database_dsn,
            "databaseBytes": data.database_bytes,
            "sourceBucket": SOURCE_BUCKET,
            "sourceObjects": data.objects,
            "sourceBytes": data.object_bytes,
            "backupBucket": BACKUP_BUCKET,
        },
        "databases": sorted(json.loads(env.get("LC2_LOCAL__DATABASES", "{}"))),  # instance ids, never the DSNs
        "logs": str(services.log_dir),
        "env": env,
    }


def _publish(
    directory: Path,
    stack: LocalStack,
    services: ServiceSet,
    env: dict[str, str],
    data: DemoData,
    health: dict[str, ServiceHealth] | None = None,
) -> None:
    # the env file first: stack.json is the readiness signal ``dev up --detach`` waits for
    write_env_file(directory, {**env, **shell_env(stack)})
    write_state(directory, _state_doc(stack, services, env, data, health or {}))


def _supervise(
    directory: Path, stack: LocalStack, services: ServiceSet, env: dict[str, str], data: DemoData, console: Console
) -> None:
    """Until a signal: restart crashed services (with backoff, for ever), end the stack if a server dies."""
    started = time.monotonic()
    first = float(os.environ.get(RESTART_DELAY, BACKOFF_FIRST))
    health = {name: ServiceHealth(started_at=started, first_delay=first) for name in services.services}
    tick = threading.Event()  # never set: its timed wait is the supervision period, interrupted by signals
    while True:
        tick.wait(SUPERVISE_INTERVAL)
        for name, pid in (("nats", stack.nats.pid), ("postgres", stack.postgres.pid), ("s3", stack.s3.pid)):
            if pid is not None and not is_running(pid):
                raise StackFailure(f"{name} (pid {pid}) exited; stopping the stack (see its log in {directory})")
        for name, svc in list(services.services.items()):
            record, now = health[name], time.monotonic()
            if not record.down:
                if svc.process is None or svc.process.alive():
                    continue
                delay = record.exited(now, svc.process.exit_code)
                console.print(
                    f"[yellow]{name} exited[/] ({record.last_exit}, {record.crashes} in a row); "
                    f"restarting it in {delay:.0f}s (log: {svc.process.log_path})"
                )
                _publish(directory, stack, services, env, data, health)
            elif now >= (record.due or now):
                try:
                    services.restart(name)
                except StackError as exc:
                    delay = record.restart_failed(time.monotonic(), str(exc))
                    console.print(f"[red]{name} did not come back[/]; trying again in {delay:.0f}s: {exc}")
                else:
                    record.restarted(time.monotonic())
                    console.print(f"[green]{name} restarted[/] (restart {record.restarts})")
                _publish(directory, stack, services, env, data, health)


def run_foreground(directory: Path, console: Console) -> None:
    """``dev up`` without ``--detach``: returns after a signal has stopped everything."""
    directory = directory.resolve()
    existing = read_state(directory)
    if existing is not None and existing.alive:
        raise StackFailure(
            f"a local stack already runs from {directory} (pid {existing.supervisor_pid})",
            hint="`lc2backup dev status` shows it, `lc2backup dev down` stops it",
        )
    clear_state(directory)
    user = user_databases()  # refused before anything starts, not after
    stack = LocalStack(directory)
    services: ServiceSet | None = None
    with stop_on_signals():
        try:
            console.print(f"starting NATS, PostgreSQL and SeaweedFS in {directory}")
            stack.start()
            console.print("seeding the demo environment (database lportal, bucket liferay-dl)")
            data = prepare(stack)
            env = services_env(stack, data, user)
            console.print("starting the five services")
            services = ServiceSet(env, directory / "logs", nats_users=stack.nats.users, nats_url=stack.nats.service_url)
            services.start()
            env["LC2_API_URL"] = services.api_url
            env["LC2_API_TOKEN"] = services.api_token  # an operator token for this stack (only its hash is served)
            _publish(directory, stack, services, env, data)
            state = read_state(directory)
            assert state is not None
            console.print(stack_view(state))
            console.print("stop with Ctrl-C or `lc2backup dev down`")
            _supervise(directory, stack, services, env, data, console)
        except Stop as stop:
            console.print(f"{stop}: stopping the services, then the servers")
        except StackError as exc:
            raise StackFailure(str(exc)) from exc
        finally:
            clear_state(directory)
            if services is not None:
                services.stop()
            stack.stop()
            console.print("stopped")


def spawn_detached(directory: Path, timeout: float = 180.0) -> int:
    """Start ``dev up`` in a new session, logging to ``<dir>/dev.log``; return its pid once it is ready."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    clear_state(directory)
    log = directory / DETACHED_LOG
    argv = [sys.executable, "-m", "lc2backup.cli", "dev", "up", "--dir", str(directory)]
    pid = os.posix_spawn(
        sys.executable,
        argv,
        {**os.environ, "PYTHONUNBUFFERED": "1"},
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,  # its own session: no Ctrl-C from this terminal, and it outlives this command
    )
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            state = read_state(directory)
            if state is not None and state.ready and state.supervisor_pid == pid:
                return pid
            if poller.poll(200):  # readable: the supervisor exited before it was ready
                _, status = os.waitpid(pid, 0)
                raise StackFailure(
                    f"dev up exited (status {os.waitstatus_to_exitcode(status)}) before it was ready; "
                    f"the end of {log}:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGTERM)
                raise StackFailure(f"dev up was not ready after {timeout:.0f}s; see {log}:\n{_tail(log)}")
    finally:
        os.close(pidfd)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
