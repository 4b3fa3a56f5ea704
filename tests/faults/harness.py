"""What every fault test needs: the event log as the judge, bounded waits that survive a service being down,
a supervisor that restarts what died (as Kubernetes would) and fails a case when anything but its target died,
and the checks that nothing was lost or doubled.

The tests judge by the event log (a pure fold over the backup's subject) rather than by the API, because the
archiver serving the API is one of the processes being killed; the projection is then checked against the
same fold, and against a rebuild from the stream.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import nats
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError

from lc2backup.domain import BackupState, backup_id_for_request, fold, registry
from lc2backup.domain.wire import RecordedEvent
from lc2backup.eventing import EventStore, Topology
from tests import polling
from tests.faults.figures import FIGURES
from tests.support import System, rebuild_projection

TOPOLOGY = Topology()
EVENT_DURABLES = ("db-export", "doclib-transfer", "metadata", "crd-gateway-admission", "restorer")
COMMAND_DURABLES = ("crd-gateway-intake", "restorer-intake")


async def connect(system: System) -> NatsClient:
    """A client with the stack's operator credentials (``NatsServer.url`` carries them when auth is on)."""
    return await nats.connect(system.nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)


class EventLog:
    """The tests' reader of the event log: the same store and fold the services use, read-only."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.store = EventStore(nc, registry(), producer="fault-tests", topology=TOPOLOGY)

    async def history(self, backup_id: str) -> list[RecordedEvent]:
        return list((await self.store.load(backup_id)).events)

    async def state(self, backup_id: str) -> BackupState:
        return fold(backup_id, await self.history(backup_id))

    async def types(self, backup_id: str) -> list[str]:
        return [e.envelope.type for e in await self.history(backup_id)]

    async def request(self, request_id: str, spec: dict[str, Any]) -> str:
        body = json.dumps({"requestId": request_id, "spec": spec}).encode()
        await self.js.publish(TOPOLOGY.request_subject, body, stream=TOPOLOGY.commands_stream)
        return backup_id_for_request(request_id)

    async def close(self) -> None:
        await self.store.close()


async def eventually(
    what: str, probe: Callable[[], Awaitable[Any]], system: System | None = None, timeout: float = 90.0
) -> Any:
    """``tests.polling.eventually`` where an error while a server is down on purpose counts as "not yet"."""
    return await polling.eventually(
        probe, timeout=timeout, what=what, tolerate=(Exception,), context=system.logs if system is not None else None
    )


async def wait_terminal(log: EventLog, backup_id: str, system: System, timeout: float = 90.0) -> BackupState:
    async def terminal() -> BackupState | None:
        state = await log.state(backup_id)
        return state if state.terminal else None

    state: BackupState = await eventually(f"backup {backup_id} ends", terminal, system, timeout)
    FIGURES.backups[state.state] += 1
    return state


async def settled(log: EventLog, system: System, timeout: float = 60.0) -> None:
    """Every durable consumer has handled and acknowledged everything (no redelivery is still to come)."""

    async def idle() -> bool:
        for stream, durables in (
            (TOPOLOGY.events_stream, EVENT_DURABLES),
            (TOPOLOGY.commands_stream, COMMAND_DURABLES),
        ):
            for durable in durables:
                try:
                    info = await log.js.consumer_info(stream, durable)
                except NotFoundError:
                    continue
                if info.num_pending or info.num_ack_pending:
                    return False
        return True

    await eventually("every consumer idle", idle, system, timeout)


@dataclass(frozen=True)
class Exit:
    process: str  # the service's name, or ``name#n`` for its n-th replica
    service: str
    code: int | None  # negative: the signal that killed it

    def __str__(self) -> str:
        return f"{self.process} (exit code {self.code})"


class Supervisor:
    """Restarts a service whose process died, as a Deployment would, and tells the case's own kill from any other.

    ``expected`` names the services the case kills, each once, by SIGKILL (a crash point kills its process so).
    Every other exit (another service, a second death of the target, an exit that is not a SIGKILL) is restarted
    too, so that the next case starts whole, but it is recorded, and ``check()`` fails the case with it.
    """

    def __init__(self, system: System, expected: Iterable[str] = (), interval: float = 0.05) -> None:
        assert system.services is not None
        self.services = system.services
        self.interval = interval
        self.expected = Counter(expected)
        self.restarted: list[str] = []
        self.unexpected: list[Exit] = []

    def dead(self) -> list[Exit]:
        return [
            Exit(key, svc.name, svc.process.exit_code)
            for key, svc in self.services.services.items()
            if svc.process is not None and not svc.process.alive()
        ]

    def restart(self, died: Exit) -> None:
        if self.expected[died.service] > 0 and died.code == -signal.SIGKILL:
            self.expected[died.service] -= 1
        else:
            self.unexpected.append(died)
        # start() must run on this (long-lived) thread: the child's death signal follows it
        self.services.restart(died.process)
        self.restarted.append(died.service)

    async def watch(self) -> None:
        while True:
            for died in self.dead():
                self.restart(died)
            await asyncio.sleep(self.interval)

    def check(self) -> None:
        """Fail if any service but the expected ones died, or an expected kill never happened."""
        assert not self.unexpected, f"unexpected exits: {', '.join(map(str, self.unexpected))}"
        missing = sorted(name for name, left in self.expected.items() if left)
        assert not missing, f"expected to die but did not: {', '.join(missing)}"


@asynccontextmanager
async def supervising(system: System, expected: Iterable[str] = ()) -> AsyncIterator[Supervisor]:
    """A supervisor for the body; at its end every death it saw must have been one of ``expected``."""
    supervisor = Supervisor(system, expected)
    task = asyncio.create_task(supervisor.watch())
    try:
        yield supervisor
    except BaseException as exc:
        if supervisor.unexpected:  # likely the cause of the failure: say so beside it
            exc.add_note(f"unexpected exits: {', '.join(map(str, supervisor.unexpected))}")
        raise
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        for died in supervisor.dead():  # died just now: bring it back before the next test
            supervisor.restart(died)
    supervisor.check()


async def projection_matches_the_log(log: EventLog, system: System, backup_ids: Iterable[str]) -> None:
    """Each backup's projected row is the fold of its history, and its projected events are its events."""
    ids = list(backup_ids)

    async def matches() -> bool:
        conn = await asyncpg.connect(system.projection_dsn, timeout=5)
        try:
            for backup_id in ids:
                history = await log.history(backup_id)
                expected = fold(backup_id, history)
                row = await conn.fetchrow("SELECT state_doc FROM backups WHERE backup_id = $1", backup_id)
                if row is None or BackupState.model_validate_json(row["state_doc"]) != expected:
                    return False
                seqs = [r["seq"] for r in await conn.fetch(
                    "SELECT seq FROM backup_events WHERE backup_id = $1 ORDER BY seq", backup_id
                )]  # fmt: skip
                if seqs != [e.sequence for e in history]:
                    return False
            return True
        finally:
            await conn.close()

    await eventually("the projection equals the fold of the log", matches, system, timeout=60)


async def tables(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            "backups": [tuple(r) for r in await conn.fetch("SELECT * FROM backups ORDER BY backup_id")],
            "backup_events": [tuple(r) for r in await conn.fetch("SELECT * FROM backup_events ORDER BY seq")],
            "restores": [tuple(r) for r in await conn.fetch("SELECT * FROM restores ORDER BY restore_id")],
        }
    finally:
        await conn.close()


async def rebuild_equals_live(system: System, scratch_database: str) -> int:
    """``python -m lc2backup.archiver rebuild`` into a second database equals the live projection.

    Returns the number of backups compared. The rebuild runs as the archiver's NATS user (its grant must
    suffice to replay the stream).
    """
    assert system.services is not None
    live = system.projection_dsn
    again = system.stack.postgres.create_database(scratch_database)
    await rebuild_projection({**system.services["archiver"].env, "LC2_POSTGRES__DSN": again}, timeout=180)
    live_tables, rebuilt = await tables(live), await tables(again)
    assert rebuilt == live_tables
    return len(live_tables["backups"])
