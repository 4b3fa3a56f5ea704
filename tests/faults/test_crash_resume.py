"""SIGKILL doclib-transfer in the middle of a copy and check, counted at the store, that the restarted service
resumes from its last recorded position instead of starting over.

Points (``lc2backup.runtime.crashpoints``): ``copy:object@N`` — mid-slice, objects copied since the last
position (armed once a position is in the log, so there is one to resume from whatever the machine's speed: the
first copy of a run armed from the start once copied 153 objects before any position was in the log); ``copy:position@N`` — right after a position is recorded; ``copy:manifest-part@N`` — a manifest part
written, its position not yet recorded. After each: every regular object is in the destination with its source's
ETag; the manifest lists each exactly once and is its parts in order, each part written once; the copies the
store made in all are at most those before the kill plus the objects after the last recorded position (read from
the event log, not from the copier) — strictly fewer than a restart from zero (every object copied before the
crash, then all of them again); and where the kill is tied to a record, within the bound below. tests/providers/test_copier.py has the positive control of these checks
(a repeated line, a rewritten part, a full re-copy made at the store are caught).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import BackupLayout, BackupState
from tests.faults import checks
from tests.faults.crashing import Case, CrashPoints
from tests.faults.harness import EventLog, connect, eventually, settled, supervising, wait_terminal
from tests.support import System, local_spec, stack_s3
from tests.versions import writes

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

FILES = 600  # 480 regular objects, 120 generated
WORKERS = 4
CASES = [
    Case("doclib-transfer", "copy:object@100"),
    Case("doclib-transfer", "copy:position@6"),
    Case("doclib-transfer", "copy:manifest-part@6"),
]


def redo_bound(regular: int) -> int:
    """Objects a resumed copy may copy again: those finished after the last recorded position — one progress
    interval (0.05 s here) of copies plus the in-flight window (queue of 4 x workers, and the workers) —,
    stated generously for a loaded machine: a fifth of the library."""
    return regular // 5


@dataclass
class Bed:
    system: System
    points: CrashPoints
    source: str
    destination: str
    regular: list[str]
    etags: dict[str, str]


async def _seed(stack: LocalStack, source: str, destination: str) -> tuple[list[str], dict[str, str]]:
    async with stack_s3(stack) as s3:
        await s3.create_bucket(Bucket=source)
        await s3.create_bucket(Bucket=destination)
        await s3.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
        layout = await seed_document_library(s3, source, "", plan_document_library(FILES))
        etags = await checks.listing(s3, source, "")
    return sorted(layout.regular), etags


@pytest.fixture(scope="module")
def bed(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("crash-resume")
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    points = CrashPoints(root / "markers", CASES)
    system = System.local(
        stack,
        nats_server,
        root / "logs",
        unique,
        {
            "LC2_CONSUMER__ACK_WAIT_SECONDS": "2",
            "LC2_POLL_INTERVAL_SECONDS": "0.5",
            "LC2_LOCAL__PROGRESS_INTERVAL_SECONDS": "0.05",
            "LC2_LOCAL__COPY_WORKERS": str(WORKERS),
            "LC2_COPY_SLICE_SECONDS": "0.5",  # several deliveries per copy, each going on from the last
        },
        points.service_env(),
    )
    source, destination = f"src-{unique}", f"dst-{unique}"
    regular, etags = asyncio.run(_seed(stack, source, destination))
    system.start()
    try:
        yield Bed(system, points, source, destination, regular, etags)
    finally:
        system.stop()
        nats_server.stop()


def _recorded_copies(state: BackupState) -> int:
    """Objects copied below the last position the log holds (its progress event's counters count exactly those)."""
    dl = state.document_library
    return (dl.counters.objects_copied or 0) if dl.position is not None else 0


async def _stable_count(s3: Any, bucket: str, prefix: str) -> int:
    """Copies at the store once the requests the killed process had sent are through."""
    last = -1
    while True:
        count = sum((await writes(s3, bucket, prefix)).values())
        if count == last:
            return count
        last = count
        await asyncio.sleep(0.3)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_copy_killed_mid_way_resumes_from_its_last_position(bed: Bed, s3: Any, case: Case) -> None:
    system = bed.system
    assert system.services is not None
    service = system.services[case.service]
    spec = local_spec(
        bed.source, bed.destination, database_name=system.source_database, environment=f"resume-{CASES.index(case)}"
    )
    log = EventLog(await connect(system))
    try:
        mid_slice = case.name == "copy:object"
        if not mid_slice:
            bed.points.arm(case)
        backup_id = await log.request(f"resume-{CASES.index(case)}", spec)
        if mid_slice:

            async def a_position_recorded() -> bool:
                return _recorded_copies(await log.state(backup_id)) > 0

            await eventually("a first position recorded", a_position_recorded, system)
            bed.points.arm(case)

        async def died() -> bool:
            return service.process is not None and not service.process.alive()

        await eventually(f"{case} reached", died, system)
        assert bed.points.crashed(case), "doclib-transfer died, but not at the case's point"
        assert service.process is not None and service.process.exit_code == -signal.SIGKILL
        state = await log.state(backup_id)
        recorded = _recorded_copies(state)  # the process is dead: the last position it recorded
        assert state.spec is not None
        layout = BackupLayout.of(state.spec, backup_id)
        before = await _stable_count(s3, bed.destination, layout.document_library_prefix)
        async with supervising(system):  # nothing else may die
            system.services.restart(case.service)
            state = await wait_terminal(log, backup_id, system)
            await settled(log, system)
        assert state.state == "Succeeded", state.message
        checks.check_events_once(await log.history(backup_id), checks.SUCCEEDED_ONCE)
        total = await checks.check_resumed_copy(s3, layout, bed.regular, bed.etags)
        regular = len(bed.regular)
        print(
            f"\n{case}: {before} copies before the kill, {recorded} of them below the last recorded position, "
            f"{total} in all for {regular} objects"
        )
        assert 0 < before < regular, "the kill came mid-copy"
        assert 0 < recorded <= before, "a position was recorded before the kill"
        assert total <= before + regular - recorded, "the resumed copy started from the last recorded position"
        assert total < regular + before, "no fewer copies than a restart from zero"
        if not mid_slice:  # killed right after a record: only the copies in flight then are redone
            assert total <= regular + redo_bound(regular), (total, regular)
    finally:
        await log.close()
        await log.nc.close()
