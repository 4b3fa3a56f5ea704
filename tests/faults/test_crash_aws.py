"""SIGKILL every service at every step boundary of an AWS-provider backup (moto behind the fake stage).

Besides the boundaries of the local suite, db-export is killed while it polls a snapshot that is still
``creating`` and an export still ``IN_PROGRESS`` (the stage holds those answers until the crash). After each
case RDS holds exactly one snapshot and one export task for the backup, the copy set is complete and
listed once, metadata.json was created once, and the projection equals the fold of the log (and, at the
end of the module, a rebuild from the stream).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig

from lc2backup.devstack import LocalStack, MotoServer, NatsServer
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.providers.aws import export_identifier, snapshot_identifier
from tests.aws.stage import Stage
from tests.aws.support import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    aws_env,
    aws_spec,
    create_instance,
    exports_of,
    snapshots_of,
)
from tests.faults import checks
from tests.faults.crashing import Case, CrashPoints, crash_system, run_case
from tests.faults.harness import EventLog, connect, projection_matches_the_log, rebuild_equals_live
from tests.metadata_json import read_metadata_json
from tests.support import System

pytestmark = [pytest.mark.faults, pytest.mark.aws, pytest.mark.e2e]

CREATING = ("DescribeDBSnapshots", {"Status": "creating", "PercentProgress": "40"})
EXPORTING = ("DescribeExportTasks", {"Status": "IN_PROGRESS", "PercentProgress": "37"})
CASES = [
    Case("db-export", "before-append:DatabaseSnapshotStarted"),
    Case("db-export", "after-append:DatabaseSnapshotStarted"),
    Case("db-export", "nak:db-export", hold=CREATING),
    Case("db-export", "after-append:DatabaseSnapshotCompleted"),
    Case("db-export", "before-append:DatabaseExportStarted"),
    Case("db-export", "after-append:DatabaseExportStarted"),
    Case("db-export", "after-append:DatabaseExportProgressed", hold=EXPORTING),
    Case("db-export", "before-append:DatabaseExportCompleted"),
    Case("db-export", "after-append:DatabaseExportCompleted"),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferStarted"),
    Case("doclib-transfer", "after-append:DocumentLibraryTransferStarted"),
    Case("doclib-transfer", "copy:object@5", copies=2),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferCompleted", copies=2),
    Case("metadata", "before-append:BackupMetadataWritten"),
    Case("metadata", "after-append:BackupMetadataWritten"),
    Case("metadata", "after-append:BackupSucceeded"),
]
AWS_ONCE = (*checks.SUCCEEDED_ONCE, "DatabaseSnapshotStarted", "DatabaseSnapshotCompleted")


@dataclass
class Bed:
    system: System
    points: CrashPoints
    stage: Stage
    moto: MotoServer
    source: str
    destination: str
    regular: list[str]
    etags: dict[str, str]


def _session_client(service: str, endpoint: str) -> Any:
    config = AioConfig(s3={"addressing_style": "path"}) if service == "s3" else None
    session: Any = aioboto3.Session()  # its overloads want a literal service name
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=config,
    )


async def _seed(endpoint: str, source: str, destination: str) -> tuple[list[str], dict[str, str]]:
    async with _session_client("s3", endpoint) as s3:
        await s3.create_bucket(Bucket=source)
        await s3.create_bucket(Bucket=destination)
        await s3.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
        layout = await seed_document_library(s3, source, "dl/", plan_document_library(30))
        return sorted(layout.regular), await checks.listing(s3, source, "dl/")


@pytest.fixture(scope="module", params=[1, 2], ids=["1-replica", "2-replicas"])
def bed(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Bed]:
    """One system per replica count: every case runs with one process of each service, then with two replicas of
    every service sharing each consumer (a crash kills whichever replica reaches the point)."""
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("crash-aws")
    moto = MotoServer(root / "moto")
    moto.start()
    stage = Stage(moto.endpoint).start()
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
    regular, etags = asyncio.run(_seed(moto.endpoint, source, destination))
    points = CrashPoints(root / "markers", CASES)
    system = crash_system(
        stack,
        nats_server,
        root,
        points,
        aws_env(stage.url, LC2_AWS__COPY_WORKERS="4", LC2_AWS__PROGRESS_INTERVAL_SECONDS="0.05"),
        request.param,
    )
    system.start()
    try:
        yield Bed(system, points, stage, moto, source, destination, regular, etags)
    finally:
        system.stop()
        nats_server.stop()
        stage.close()
        moto.stop()


@pytest.fixture
async def aws(bed: Bed) -> AsyncIterator[tuple[Any, Any]]:
    async with _session_client("rds", bed.moto.endpoint) as rds, _session_client("s3", bed.moto.endpoint) as s3:
        yield rds, s3


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_sigkill_at_every_step_boundary_of_an_aws_backup_starts_nothing_twice(
    bed: Bed, aws: tuple[Any, Any], case: Case
) -> None:
    rds, s3 = aws
    system, stage = bed.system, bed.stage
    lane = f"crash-{CASES.index(case)}"
    instance = f"liferay-{lane}"
    await create_instance(rds, instance)
    log = EventLog(await connect(system))
    if case.hold is not None:
        stage.set_fields(*case.hold)

    def release() -> None:
        if case.hold is not None:
            stage.set_fields(case.hold[0], None)

    async def submit() -> Sequence[str]:
        spec = aws_spec(instance, bed.source, bed.destination, environment=lane)
        return [await log.request(lane, spec)]

    try:
        (state,) = await run_case(system, log, bed.points, case, "aws", submit, release)
        assert state.state == "Succeeded", state.message
        history = await log.history(state.backup_id)
        checks.check_events_once(history, AWS_ONCE)
        (snapshot,) = await snapshots_of(rds, instance)
        assert snapshot["DBSnapshotIdentifier"] == snapshot_identifier(state.backup_id, "instance")
        (task,) = await exports_of(rds, {snapshot["DBSnapshotArn"]})
        assert task["ExportTaskIdentifier"] == export_identifier(state.backup_id)
        await checks.check_copy_set(s3, state, bed.regular, bed.etags, case.copies)
        await checks.check_metadata_once(s3, state, history)
        await checks.check_lane_released(log, state)
        await projection_matches_the_log(log, system, [state.backup_id])
        meta = read_metadata_json(await checks.read(s3, bed.destination, f"backups/{state.backup_id}/metadata.json"))
        assert meta["database"]["snapshot"]["location"] == snapshot["DBSnapshotArn"]
    finally:
        release()
        await log.close()
        await log.nc.close()


@pytest.mark.timeout(240)
async def test_after_every_crash_a_rebuild_of_the_projection_equals_the_live_one(bed: Bed) -> None:
    await rebuild_equals_live(bed.system, f"rebuild_{uuid.uuid4().hex[:8]}")  # after the cases above: equal tables
