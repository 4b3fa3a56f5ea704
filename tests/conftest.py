"""Real servers for the tests: one local stack per session (PostgreSQL, SeaweedFS), a fresh NATS per test.

Nothing here patches our own code. Isolation: each test gets its own nats-server (0.05 s to start), its own
PostgreSQL database and its own buckets.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.domain import registry
from lc2backup.eventing import EventStore, Topology, ensure_streams
from tests.faults.figures import FIGURES
from tests.support import BACKUP_SERVICES, System, stack_s3

FAULT_FIGURES = "lc2_fault_figures"


def _worker(config: pytest.Config) -> bool:
    """This process is a pytest-xdist worker (its reports and figures go to the controller)."""
    return hasattr(config, "workerinput")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Fault cases passed and failed, counted where the reports arrive: a worker's own count is not sent (under
    xdist the controller counts the reports the workers forward)."""
    if not report.nodeid.startswith("tests/faults/"):
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        if report.passed:
            FIGURES.cases_passed += 1
        elif report.failed:
            FIGURES.cases_failed += 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _worker(session.config):
        session.config.workeroutput[FAULT_FIGURES] = FIGURES.to_wire()  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """A pytest-xdist worker ended: add its fault figures to the controller's."""
    wire = getattr(node, "workeroutput", {}).get(FAULT_FIGURES)
    if wire is not None:
        FIGURES.merge(wire)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _worker(terminalreporter.config) or FIGURES.cases_passed + FIGURES.cases_failed == 0:
        return
    terminalreporter.section("fault injection figures (tests/faults)")
    for line in FIGURES.lines():
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("stack")).start()
    yield local
    local.stop()
    local.remove()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.drain()


@pytest.fixture
def topology() -> Topology:
    return Topology()


@pytest.fixture
async def store(nc: NatsClient, topology: Topology) -> AsyncIterator[EventStore]:
    await ensure_streams(nc.jetstream(), topology)
    event_store = EventStore(nc, registry(), producer="tests", topology=topology)
    yield event_store
    await event_store.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def pg_dsn(stack: LocalStack, unique: str) -> str:
    """A fresh, empty database on the session's PostgreSQL."""
    return stack.postgres.create_database(f"t_{unique}")


@pytest.fixture
async def s3(stack: LocalStack) -> AsyncIterator[Any]:
    async with stack_s3(stack) as client:
        yield client


@pytest.fixture
async def buckets(s3: Any, unique: str) -> tuple[str, str]:
    """(source, destination) buckets, empty, unique to the test."""
    source, destination = f"src-{unique}", f"dst-{unique}"
    await s3.create_bucket(Bucket=source)
    await s3.create_bucket(Bucket=destination)
    return source, destination


@pytest.fixture
def system_extra_env() -> dict[str, str]:
    """Extra LC2_* settings for the ``system`` fixture; override this fixture in a test module."""
    return {}


@pytest.fixture
def replicas() -> int:
    """Processes of each service in the ``system`` fixture (tests/e2e runs its tests with 1 and with 2)."""
    return 1


@pytest.fixture
def system_services() -> tuple[str, ...]:
    """The services the ``system`` fixture starts: a backup's five (tests of restores add the restorer)."""
    return BACKUP_SERVICES


@pytest.fixture
def system(
    stack: LocalStack,
    nats_server: NatsServer,
    tmp_path: Path,
    unique: str,
    system_extra_env: dict[str, str],
    replicas: int,
    system_services: tuple[str, ...],
) -> Iterator[System]:
    """The services as real processes, on a fresh NATS and a fresh projection database."""
    system = System.local(
        stack, nats_server, tmp_path / "logs", unique, system_extra_env, replicas=replicas, names=system_services
    )
    system.start()
    yield system
    system.stop()
