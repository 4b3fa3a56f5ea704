"""SIGKILL every service at every step boundary of a GCP-provider backup (the real Google clients against
fake-gcs-server and the local Cloud SQL Admin and Storage Transfer servers).

Besides the boundaries of the local suite, db-export is killed while it polls a backup run that is still
RUNNING and right after recording an export that is still RUNNING, and doclib-transfer while the transfer
operation is IN_PROGRESS (the fakes hold their operations until the crash). Cloud SQL reports no progress for
an export, so there is no progress event to crash after. After each case, counted in the fakes' own state: one backup run and one export
operation for the backup, one transfer job run once, each document written once into the backup (STS's
``overwriteWhen: NEVER`` would hide a second run, so its operations are counted too); metadata.json
recorded once and equal to what was recorded; the lane free; the projection equal to the fold of the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import plan_document_library
from lc2backup.domain import BackupLayout
from lc2backup.providers.gcp import transfer_job_name
from tests.faults import checks
from tests.faults.crashing import Case, CrashPoints, crash_system, holding, liferay_database, run_case
from tests.faults.harness import EventLog, connect, projection_matches_the_log, rebuild_equals_live
from tests.gcp.support import PROJECT, REFRESH_TOKEN, CloudSql, GcpFakes, gcp_spec, listing, ours, read_gs, seed_gcs
from tests.metadata_json import read_metadata_json
from tests.support import System

pytestmark = [pytest.mark.faults, pytest.mark.gcp, pytest.mark.e2e]

SQL = ("sqladmin", {})  # the fake Cloud SQL keeps its operations RUNNING until the crash
DUMP_HELD = ("sqladmin", {"type": "dump"})  # the same for an export alone (held from the start, no backup run)
STS = ("sts", {})  # the fake Storage Transfer keeps its operation IN_PROGRESS until the crash
CASES = [
    Case("db-export", "before-append:DatabaseSnapshotStarted"),
    Case("db-export", "after-append:DatabaseSnapshotStarted"),
    Case("db-export", "nak:db-export", hold=SQL),
    Case("db-export", "after-append:DatabaseSnapshotCompleted"),
    Case("db-export", "before-append:DatabaseExportStarted"),
    Case("db-export", "after-append:DatabaseExportStarted", hold=DUMP_HELD),  # killed while the export RUNS
    Case("db-export", "before-append:DatabaseExportCompleted"),
    Case("db-export", "after-append:DatabaseExportCompleted"),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferStarted"),
    Case("doclib-transfer", "after-append:DocumentLibraryTransferStarted"),
    Case("doclib-transfer", "after-append:DocumentLibraryTransferProgressed", hold=STS),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferCompleted"),
    Case("metadata", "before-append:BackupMetadataWritten"),
    Case("metadata", "after-append:BackupMetadataWritten"),
    Case("metadata", "after-append:BackupSucceeded"),
]
GCP_ONCE = (*checks.SUCCEEDED_ONCE, "DatabaseSnapshotStarted", "DatabaseSnapshotCompleted")


@dataclass
class Bed:
    system: System
    points: CrashPoints
    fakes: GcpFakes
    stack: LocalStack
    source: str
    destination: str
    regular: list[str]
    md5s: dict[str, tuple[int, str]]


@pytest.fixture(scope="module", params=[2], ids=["2-replicas"])
def bed(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Bed]:
    """One system with two replicas of every service sharing each consumer (a crash kills whichever replica
    reaches the point) and its own set of GCP fakes (their holds are the module's)."""
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("crash-gcp")
    fakes = GcpFakes.start(root / "gcp", REFRESH_TOKEN)
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
    gcs = fakes.client()
    gcs.create_bucket(source)
    gcs.create_bucket(destination)
    layout = asyncio.run(seed_gcs(gcs, source, "dl/", plan_document_library(30)))
    md5s = asyncio.run(listing(gcs, source, "dl/"))
    points = CrashPoints(root / "markers", CASES)
    system = crash_system(stack, nats_server, root, points, fakes.env(), request.param)
    system.start()
    try:
        yield Bed(system, points, fakes, stack, source, destination, sorted(layout.regular), md5s)
    finally:
        system.stop()
        nats_server.stop()
        fakes.stop()


def _holder(bed: Bed, case: Case) -> Callable[[bool], None] | None:
    if case.hold is None:
        return None
    return bed.fakes.sqladmin.hold if case.hold[0] == "sqladmin" else bed.fakes.sts.hold


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_sigkill_at_every_step_boundary_of_a_gcp_backup_starts_nothing_twice(bed: Bed, case: Case) -> None:
    system, fakes = bed.system, bed.fakes
    lane = f"crash-{CASES.index(case)}"
    database, dsn = liferay_database(bed.stack)
    instance = CloudSql(f"liferay-{lane}", database, dsn)
    fakes.sqladmin.add_instance(PROJECT, instance.name, dsn)
    log = EventLog(await connect(system))
    release = holding(_holder(bed, case))

    async def submit() -> Sequence[str]:
        spec = gcp_spec(instance, bed.source, bed.destination, environment=lane)
        spec["database"].update(case.hold[1] if case.hold else {})
        return [await log.request(lane, spec)]

    try:
        (state,) = await run_case(system, log, bed.points, case, "gcp", submit, release)
        assert state.state == "Succeeded", state.message
        history = await log.history(state.backup_id)
        dump = case.hold == DUMP_HELD
        checks.check_events_once(history, checks.SUCCEEDED_ONCE if dump else GCP_ONCE)
        runs, exports = ours(fakes.sqladmin.state(), state.backup_id, instance.name)
        assert (len(runs), len(exports)) == (0 if dump else 1, 1), (runs, exports)
        await _check_transfer_once(bed, state.backup_id)
        await _check_metadata(bed, state.backup_id, history)
        await checks.check_lane_released(log, state)
        await projection_matches_the_log(log, system, [state.backup_id])
    finally:
        release()
        await log.close()
        await log.nc.close()


async def _check_transfer_once(bed: Bed, backup_id: str) -> None:
    sts, gcs = bed.fakes.sts.state(), bed.fakes.client()
    job = transfer_job_name(backup_id)
    assert [j["name"] for j in sts["jobs"]].count(job) == 1
    assert sts["counts"]["transferJobs.run"] >= 1
    operations = [o for o in sts["operations"] if o["metadata"].get("transferJobName") == job]
    assert len(operations) == 1, operations
    layout = BackupLayout(bed.destination, f"backups/{backup_id}/", "gs")
    copied = await listing(gcs, bed.destination, layout.document_library_prefix)
    assert copied == {key: bed.md5s[key] for key in bed.regular}
    written = {
        key: n for key, n in sts["counts"]["writes"].items() if key.startswith(f"{bed.destination}/{layout.root}")
    }
    assert sorted(written.values()) == [1] * len(bed.regular), written


async def _check_metadata(bed: Bed, backup_id: str, history: list[Any]) -> None:
    body = await read_gs(bed.fakes.client(), f"gs://{bed.destination}/backups/{backup_id}/metadata.json")
    (written,) = [e for e in history if e.envelope.type == "BackupMetadataWritten"]
    assert written.envelope.data["sha256"] == hashlib.sha256(body).hexdigest()
    assert read_metadata_json(body)["backupId"] == backup_id


@pytest.mark.timeout(240)
async def test_after_every_gcp_crash_a_rebuild_of_the_projection_equals_the_live_one(bed: Bed) -> None:
    await rebuild_equals_live(bed.system, f"rebuild_{uuid.uuid4().hex[:8]}")
