"""Crash cases: which service is SIGKILLed at which named point, and the marker files that arm them.

A system is started once per provider with *every* point of its cases listed in each service's
``LC2_CRASH_AT`` and every marker file present (all disarmed); a case arms its one point by deleting its
marker, runs backups through it, and the process kills itself there (``lc2backup.runtime.crashpoints``).
One system per provider, not one per case: a case then costs a backup and a restart, not five start-ups.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import liferay_database_sql
from lc2backup.domain import BackupState
from tests.faults.figures import FIGURES
from tests.faults.harness import EventLog, eventually, settled, supervising, wait_terminal
from tests.support import System

Shape = Literal["one", "queued", "failing", "verification"]


@dataclass(frozen=True)
class Case:
    service: str
    point: str  # as armed: ``name`` or ``name@N`` (the N-th time it is reached)
    shape: Shape = "one"  # one backup; two in one lane (the second queues); one whose database branch fails;
    # (tests/faults/test_crash_restore.py) a verification rather than a restore
    hold: tuple[str, dict[str, str]] | None = field(default=None, compare=False)  # aws stage: answer this way
    # until the crash, so the service is polling when it dies
    copies: int = 1  # how often each object may be copied: 2 when the crash interrupts the copy (it is redone)

    @property
    def name(self) -> str:
        return self.point.partition("@")[0]

    def __str__(self) -> str:
        return f"{self.service}:{self.point}"


class CrashPoints:
    """The marker directory of one system: one subdirectory per service, one file per disarmed point."""

    def __init__(self, root: Path, cases: Iterable[Case]) -> None:
        self.root = root
        self.cases = list(cases)
        for case in self.cases:
            self.marker(case).parent.mkdir(parents=True, exist_ok=True)
            self.marker(case).touch()

    def marker(self, case: Case) -> Path:
        return self.root / case.service / case.name

    def service_env(self) -> dict[str, dict[str, str]]:
        points: dict[str, list[str]] = {}
        for case in self.cases:
            points.setdefault(case.service, []).append(case.point)
        return {
            service: {"LC2_CRASH_AT": ",".join(armed), "LC2_CRASH_MARKERS": str(self.root / service)}
            for service, armed in points.items()
        }

    def arm(self, case: Case) -> None:
        self.marker(case).unlink()

    def crashed(self, case: Case) -> bool:
        return self.marker(case).exists()


async def run_case(
    system: System,
    log: EventLog,
    points: CrashPoints,
    case: Case,
    provider: str,
    submit: Callable[[], Awaitable[Sequence[str]]],
    release: Callable[[], None] | None = None,
) -> list[BackupState]:
    """Arm the case's point, run its backups to their end under a supervisor, and wait until all is quiet.

    The case fails if its service did not die at the point, or if any other service died meanwhile.
    """
    points.arm(case)
    try:
        async with supervising(system, expected=[case.service]) as supervisor:
            backup_ids = await submit()

            async def crashed() -> bool:
                return points.crashed(case)

            await eventually(f"{case} reached", crashed, system)
            if release is not None:
                release()
            states = [await wait_terminal(log, backup_id, system) for backup_id in backup_ids]
            await settled(log, system)
    finally:
        if not points.crashed(case):  # never reached: disarm it, or a later case would crash there
            points.marker(case).touch()
    # supervising() has checked that the target died once, by SIGKILL, and nothing else died
    FIGURES.crashes[case.service] += 1
    FIGURES.points.add((provider, case.service, case.point))
    FIGURES.restarts += len(supervisor.restarted)
    return states


def crash_system(
    stack: LocalStack,
    nats: NatsServer,
    root: Path,
    points: CrashPoints,
    provider_env: Mapping[str, str],
    replicas: int,
) -> System:
    """The services of a provider's crash matrix (not started): on ``nats`` and a fresh projection database, with
    every case's point listed (disarmed), short ack waits and polls, and the provider's settings on top."""
    projection = stack.postgres.create_database(f"p_{uuid.uuid4().hex[:8]}")
    env = {
        **stack.env(),
        "LC2_NATS__URL": nats.url,
        "LC2_POSTGRES__DSN": projection,
        "LC2_CONSUMER__ACK_WAIT_SECONDS": "2",
        "LC2_POLL_INTERVAL_SECONDS": "0.5",
        "LC2_BATCH_SIZE": "20",
        **provider_env,
    }
    return System(
        stack=stack,
        nats=nats,
        env=env,
        log_dir=root / "logs",
        source_dsn="",
        projection_dsn=projection,
        service_env=points.service_env(),
        replicas=replicas,
    )


def holding(hold: Callable[[bool], None] | None) -> Callable[[], None]:
    """Hold a stand-in's operations now (a case that kills while one runs); the release to hand ``run_case``."""
    if hold is None:
        return lambda: None
    hold(True)
    return lambda: hold(False)


def liferay_database(stack: LocalStack) -> tuple[str, str]:
    """A fresh database with Liferay's tables and rows, behind a case's managed server: (name, DSN)."""
    database = f"lportal_{uuid.uuid4().hex[:8]}"
    dsn = stack.postgres.create_database(database)
    stack.postgres.psql(liferay_database_sql(), database=database)
    return database, dsn
