"""SIGKILL every service at every step boundary of a local-provider backup, start it again, and check that the
backup still ends right with every effect exactly once.

Boundaries (``lc2backup.runtime.crashpoints``): after an effect but before its event (``before-append``),
after an event but before the message is acked (``after-append``, ``ack``), in the middle of the dump and of
the copy, between a projection batch's rows and its commit, and after it. After each case: each decision is
in the log once; one dump (created once), one copy set with one manifest line per object, metadata.json
created once; the lane is free again; the projection equals the fold of the log; and at the end of the
module a rebuild of the projection from the stream equals the live one.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from lc2backup.domain import BackupLayout
from lc2backup.providers.s3 import MultipartWriter
from tests.faults import checks
from tests.faults.crashing import Case, CrashPoints, run_case
from tests.faults.harness import (
    EventLog,
    connect,
    projection_matches_the_log,
    rebuild_equals_live,
    settled,
    supervising,
    wait_terminal,
)
from tests.faults.proxy import TcpProxy
from tests.support import System, local_spec, stack_s3

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

CASES = [
    Case("crd-gateway", "after-append:BackupRequested"),
    Case("crd-gateway", "before-append:BackupAdmitted"),
    Case("crd-gateway", "after-append:BackupAdmitted"),
    Case("crd-gateway", "after-append:BackupQueued", shape="queued"),
    Case("crd-gateway", "ack:crd-gateway-admission", shape="queued"),
    Case("db-export", "before-append:DatabaseExportStarted"),
    Case("db-export", "after-append:DatabaseExportStarted"),
    Case("db-export", "dump:chunk@3"),
    Case("db-export", "dump:uploaded"),  # upload complete, .sha256 not yet written: reused, not dumped again
    Case("db-export", "after-append:DatabaseExportProgressed"),
    Case("db-export", "before-append:DatabaseExportCompleted"),
    Case("db-export", "after-append:DatabaseExportCompleted"),
    Case("db-export", "after-append:DatabaseBranchFailed", shape="failing"),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferStarted"),
    Case("doclib-transfer", "after-append:DocumentLibraryTransferStarted"),
    Case("doclib-transfer", "copy:object@5", copies=2),
    Case("doclib-transfer", "after-append:DocumentLibraryTransferProgressed", copies=2),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferCompleted", copies=2),
    Case("doclib-transfer", "after-append:DocumentLibraryTransferCompleted"),
    Case("metadata", "before-append:BackupMetadataWritten"),
    Case("metadata", "after-append:BackupMetadataWritten"),
    Case("metadata", "after-append:BackupSucceeded"),
    Case("metadata", "after-append:BackupFailed", shape="failing"),
    Case("archiver", "projection:rows-written"),
    Case("archiver", "projection:committed"),
]
# ~10 MB of rows: a dump of a few hundred KB at level 1 (several chunks, progress reported mid-dump)
SOURCE_TABLE = """
CREATE TABLE attachments (id int PRIMARY KEY, body text);
INSERT INTO attachments SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
FROM generate_series(1, 100000) g;
"""


@dataclass
class Bed:
    system: System
    points: CrashPoints
    source: str
    destination: str
    regular: list[str]
    etags: dict[str, str]
    database: TcpProxy  # db-export's way to the source database: held to keep a first backup running


async def _seed(stack: LocalStack, source_dsn: str, source: str, destination: str) -> tuple[list[str], dict[str, str]]:
    conn = await asyncpg.connect(source_dsn)
    try:
        await conn.execute(SOURCE_TABLE)
    finally:
        await conn.close()
    async with stack_s3(stack) as s3:
        await s3.create_bucket(Bucket=source)
        await s3.create_bucket(Bucket=destination)
        # every version is kept: "created once" is then something the bucket can show
        await s3.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
        layout = await seed_document_library(s3, source, "", plan_document_library(40))
        etags = await checks.listing(s3, source, "")
    return sorted(layout.regular), etags


@pytest.fixture(scope="module", params=[1, 2], ids=["1-replica", "2-replicas"])
def bed(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Bed]:
    """One system per replica count: every case runs with one process of each service, then with two replicas of
    every service sharing each consumer (a crash kills whichever replica reaches the point)."""
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("crash-local")
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    points = CrashPoints(root / "markers", CASES)
    pg_port = int(stack.postgres.dsn_for("x").rsplit(":", 1)[1].split("/")[0])
    database = TcpProxy("127.0.0.1", pg_port).start()
    system = System.local(
        stack,
        nats_server,
        root / "logs",
        unique,
        {
            "LC2_CONSUMER__ACK_WAIT_SECONDS": "2",  # a killed service's message comes back after this
            "LC2_POLL_INTERVAL_SECONDS": "0.5",
            "LC2_LOCAL__PROGRESS_INTERVAL_SECONDS": "0.05",
            "LC2_LOCAL__COPY_WORKERS": "4",
            "LC2_BATCH_SIZE": "20",  # several projection batches per backup
        },
        replicas=request.param,
    )
    source_via_proxy = system.source_dsn.replace(f":{pg_port}/", f":{database.port}/")
    crash_env = points.service_env()
    system.service_env = {
        **crash_env,
        "db-export": {**crash_env["db-export"], "LC2_LOCAL__DATABASES": json.dumps({"liferay-test": source_via_proxy})},
    }
    source, destination = f"src-{unique}", f"dst-{unique}"
    regular, etags = asyncio.run(_seed(stack, system.source_dsn, source, destination))
    system.start()
    try:
        yield Bed(system, points, source, destination, regular, etags, database)
    finally:
        database.release()
        system.stop()
        nats_server.stop()
        database.close()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_sigkill_at_every_step_boundary_loses_and_repeats_nothing(bed: Bed, s3: Any, case: Case) -> None:
    system = bed.system
    lane = f"crash-{CASES.index(case)}"

    def spec(**overrides: Any) -> dict[str, Any]:
        return local_spec(
            bed.source, bed.destination, database_name=system.source_database, environment=lane, **overrides
        )

    log = EventLog(await connect(system))
    try:

        async def submit() -> Sequence[str]:
            if case.shape == "queued":  # the first backup's dump waits until the crash: the second must queue
                bed.database.hold()
            if case.shape == "failing":
                broken = {"type": "dump", "instanceId": "not-configured", "databaseName": "lportal"}
                return [await log.request(f"{lane}-failing", spec(database=broken))]
            first = await log.request(f"{lane}-a", spec())
            if case.shape == "one":
                return [first]
            return [first, await log.request(f"{lane}-b", spec())]

        states = await run_case(system, log, bed.points, case, "local", submit, bed.database.release)
        for state in states:
            history = await log.history(state.backup_id)
            if case.shape == "failing":
                assert state.state == "Failed", state.message
                assert "not-configured" in (state.message or "")
                checks.check_events_once(history, ("BackupRequested", "DatabaseBranchFailed", "BackupFailed"))
                await checks.check_no_metadata(s3, state)
                continue
            assert state.state == "Succeeded", state.message
            checks.check_events_once(history, checks.SUCCEEDED_ONCE)
            await checks.check_dump_once(s3, state)
            await checks.check_copy_set(s3, state, bed.regular, bed.etags, case.copies)
            await checks.check_metadata_once(s3, state, history)
        if case.point == "after-append:BackupQueued":
            assert (await log.types(states[1].backup_id)).count("BackupQueued") == 1
        await checks.check_lane_released(log, states[0])
        await projection_matches_the_log(log, system, [s.backup_id for s in states])
    finally:
        bed.database.release()
        await log.close()
        await log.nc.close()


@pytest.mark.timeout(240)
async def test_the_dump_check_sees_a_second_upload_of_the_dump(bed: Bed, s3: Any) -> None:
    """Positive control of ``check_dump_once`` (the server's count of the dump's versions): the second upload a
    redelivery would make if it dumped again (``dump:uploaded`` before the fix) is seen and fails the check."""
    system = bed.system
    spec = local_spec(bed.source, bed.destination, database_name=system.source_database, environment="control")
    log = EventLog(await connect(system))
    try:
        state = await wait_terminal(log, await log.request("dump-control", spec), system)
        assert state.state == "Succeeded", state.message
        await checks.check_dump_once(s3, state)
        export = state.database.export
        assert export is not None and state.spec is not None
        layout = BackupLayout.of(state.spec, state.backup_id)
        key = export.location.removeprefix(f"s3://{layout.bucket}/")
        again = await checks.read(s3, layout.bucket, key)
        head = await s3.head_object(Bucket=layout.bucket, Key=key)
        writer = MultipartWriter(s3, layout.bucket, key, metadata=head["Metadata"])  # as PgDumper uploads it
        await writer.write(again)
        await writer.close()
        with pytest.raises(AssertionError, match="the dump was written more than once"):
            await checks.check_dump_once(s3, state)
    finally:
        await log.close()
        await log.nc.close()


@pytest.mark.timeout(240)
async def test_control_a_case_fails_when_a_service_it_did_not_kill_dies(bed: Bed) -> None:
    """Positive control of the supervisor: db-export dies at the case's point as planned, and the test SIGKILLs
    metadata besides. The supervisor restarts both (the backup still ends), but the case must fail, naming
    metadata and how it ended."""
    system = bed.system
    assert system.services is not None
    services = system.services
    case = next(c for c in CASES if c.point == "after-append:DatabaseExportStarted")
    log = EventLog(await connect(system))
    try:

        async def submit() -> Sequence[str]:
            spec = local_spec(bed.source, bed.destination, database_name=system.source_database, environment="ctl-1")
            backup_id = await log.request("control-supervisor", spec)
            services["metadata"].kill()  # SIGKILL, reaped: the supervisor sees it dead
            return [backup_id]

        with pytest.raises(AssertionError, match=r"^unexpected exits: metadata \(exit code -9\)"):
            await run_case(system, log, bed.points, case, "local", submit)
    finally:
        await log.close()
        await log.nc.close()
    assert all(svc.process is not None and svc.process.alive() for svc in services.services.values())


@pytest.mark.timeout(240)
async def test_control_the_checks_catch_a_second_copy_dump_or_metadata_json_made_at_the_store(
    bed: Bed, s3: Any
) -> None:
    """Positive control of the write counts: a backup that ran through no fault passes the checks; then the test
    itself, directly against SeaweedFS, copies one object again, writes the dump and metadata.json again (the same
    bytes, so only a count of writes can tell), and each check must fail naming that key."""
    system = bed.system
    log = EventLog(await connect(system))
    try:
        spec = local_spec(bed.source, bed.destination, database_name=system.source_database, environment="ctl-2")
        async with supervising(system):  # nothing may die here
            backup_id = await log.request("control-writes", spec)
            state = await wait_terminal(log, backup_id, system)
            await settled(log, system)
        assert state.state == "Succeeded", state.message
        history = await log.history(backup_id)
        await checks.check_dump_once(s3, state)
        await checks.check_copy_set(s3, state, bed.regular, bed.etags)
        await checks.check_metadata_once(s3, state, history)

        assert state.spec is not None and state.database.export is not None
        layout = BackupLayout.of(state.spec, backup_id)
        copy = layout.document_library_prefix + bed.regular[0]
        await s3.copy_object(Bucket=bed.destination, Key=copy, CopySource={"Bucket": bed.source, "Key": bed.regular[0]})
        with pytest.raises(AssertionError, match=re.escape(f"{{'{copy}': 2}}")):
            await checks.check_copy_set(s3, state, bed.regular, bed.etags)
        await checks.check_copy_set(s3, state, bed.regular, bed.etags, copies=2)  # the bound of a redone copy

        dump = state.database.export.location.removeprefix(f"s3://{bed.destination}/")
        await s3.copy_object(Bucket=bed.destination, Key=dump, CopySource={"Bucket": bed.destination, "Key": dump})
        with pytest.raises(AssertionError, match=re.escape(f"{{'{dump}': 2}}")):
            await checks.check_dump_once(s3, state)

        body = await checks.read(s3, bed.destination, layout.metadata_key)
        await s3.put_object(Bucket=bed.destination, Key=layout.metadata_key, Body=body)
        with pytest.raises(AssertionError, match=re.escape(f"{layout.metadata_key} written 2x, not once")):
            await checks.check_metadata_once(s3, state, history)
    finally:
        await log.close()
        await log.nc.close()


@pytest.mark.timeout(240)
async def test_after_every_crash_a_rebuild_of_the_projection_equals_the_live_one(bed: Bed) -> None:
    await rebuild_equals_live(bed.system, f"rebuild_{uuid.uuid4().hex[:8]}")  # after the cases above: equal tables
