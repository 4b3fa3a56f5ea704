"""SIGKILL the restorer (and the archiver) at every step boundary of a restore and of a verification, start it
again, and check that the restore still ends Succeeded with every effect once, counted at the servers.

One backup is made when the module starts; each case restores it into its own new database and its own prefix
of a versioned bucket. After each case: each decision is in the log once; the target database equals the source
(psql, per table: count and an md5 of the ordered rows) and no other database of the case exists (a restore
redone after a crash drops only its own incomplete database); the target prefix holds exactly the backup's
objects, each written once (twice when the crash interrupted the copy), counted by the bucket's versions. At
the end of the module, the projection rebuilt from the stream equals the live one, restores included.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import liferay_database_sql, plan_document_library, seed_document_library
from lc2backup.domain.restore_state import RestoreState, fold_restore
from lc2backup.domain.restoring import restore_id_for_request
from tests.faults import checks
from tests.faults.crashing import Case, CrashPoints
from tests.faults.figures import FIGURES
from tests.faults.harness import (
    TOPOLOGY,
    EventLog,
    connect,
    eventually,
    rebuild_equals_live,
    settled,
    supervising,
    wait_terminal,
)
from tests.restore.helpers import RESTORED_ONCE, databases_named, table_digests
from tests.support import ALL_SERVICES, System, local_spec, stack_s3
from tests.versions import rewritten, writes

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.restore]


CASES = [
    Case("restorer", "after-append:RestoreAdmitted"),
    Case("restorer", "before-append:RestoreValidated"),
    Case("restorer", "after-append:RestoreValidated"),
    Case("restorer", "restore:database-created"),
    Case("restorer", "restore:chunk"),  # mid pg_restore: the database is half restored
    Case("restorer", "restore:object@3", copies=2),
    Case("restorer", "before-append:DatabaseRestoreCompleted"),
    Case("restorer", "after-append:DocumentLibraryRestoreCompleted"),
    Case("restorer", "before-append:RestoreSucceeded"),
    Case("restorer", "after-append:VerificationSucceeded", shape="verification"),
    Case("restorer", "before-append:ScratchRemoved", shape="verification"),
    Case("archiver", "projection:rows-written"),
]


@dataclass
class Bed:
    system: System
    points: CrashPoints
    backup_id: str
    regular: list[str]
    target: str  # the versioned bucket restores go into
    destination: str


async def _backup(system: System, source: str, destination: str, target: str) -> tuple[str, list[str]]:
    conn = await asyncpg.connect(system.source_dsn)
    try:
        await conn.execute(liferay_database_sql(scale=1))
    finally:
        await conn.close()
    async with stack_s3(system.stack) as s3:
        for bucket in (source, destination, target):
            await s3.create_bucket(Bucket=bucket)
        # every version is kept: "written once" is then something the bucket can show
        await s3.put_bucket_versioning(Bucket=target, VersioningConfiguration={"Status": "Enabled"})
        await s3.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
        layout = await seed_document_library(s3, source, "", plan_document_library(40))
    log = EventLog(await connect(system))
    try:
        spec = local_spec(source, destination, database_name=system.source_database)
        state = await wait_terminal(log, await log.request("restore-crash-backup", spec), system)
        assert state.state == "Succeeded", state.message
    finally:
        await log.close()
        await log.nc.close()
    return state.backup_id, sorted(layout.regular)


@pytest.fixture(scope="module")
def bed(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("crash-restore")
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    points = CrashPoints(root / "markers", CASES)
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
            "LC2_BATCH_SIZE": "5",  # several projection batches per restore
        },
        names=ALL_SERVICES,
    )
    system.service_env = points.service_env()
    system.start()
    source, destination, target = f"src-{unique}", f"dst-{unique}", f"tgt-{unique}"
    try:
        backup_id, regular = asyncio.run(_backup(system, source, destination, target))
        yield Bed(system, points, backup_id, regular, target, destination)
    finally:
        system.stop()
        nats_server.stop()


async def _restore_state(log: EventLog, restore_id: str) -> RestoreState:
    return fold_restore(restore_id, await log.history(restore_id))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c}:{c.shape}")
async def test_a_sigkill_at_every_restore_step_loses_and_repeats_nothing(bed: Bed, s3: Any, case: Case) -> None:
    system = bed.system
    index = CASES.index(case)
    database = f"crash_{index}_{uuid.uuid4().hex[:6]}"
    prefix = f"case-{index}/"
    spec: dict[str, Any] = {"backupId": bed.backup_id}
    if case.shape == "verification":
        spec["purpose"] = "verification"
    else:
        spec |= {"database": {"databaseName": database}, "documentLibrary": {"bucket": bed.target, "prefix": prefix}}
    log = EventLog(await connect(system))
    bed.points.arm(case)
    try:
        async with supervising(system, expected=[case.service]) as supervisor:
            request_id = f"restore-crash-{index}-{uuid.uuid4().hex[:6]}"
            body = json.dumps({"requestId": request_id, "spec": spec}).encode()
            await log.js.publish(TOPOLOGY.restore_subject, body, stream=TOPOLOGY.commands_stream)
            restore_id = restore_id_for_request(request_id)

            async def crashed() -> bool:
                return bed.points.crashed(case)

            await eventually(f"{case} reached", crashed, system)

            async def ended() -> RestoreState | None:
                state = await _restore_state(log, restore_id)
                return state if state.terminal else None

            state = await eventually(f"restore {restore_id} ended", ended, system)
            await settled(log, system)
        FIGURES.crashes[case.service] += 1
        FIGURES.points.add(("local-restore", case.service, case.point))
        FIGURES.restarts += len(supervisor.restarted)
        assert state.state == "Succeeded", state.model_dump_json(indent=1)
        types = [e.envelope.type for e in await log.history(restore_id)]
        for event_type in RESTORED_ONCE:
            assert types.count(event_type) == 1, (event_type, types)
        assert state.plan is not None and state.plan.database is not None and state.plan.document_library is not None
        if case.shape == "verification":
            assert state.verification is not None and state.verification.passed, state.verification
            assert types.count("VerificationSucceeded") == 1 and types.count("ScratchRemoved") == 1, types
            assert databases_named(system.stack, state.plan.database.target_database) == []
            assert await checks.listing(s3, bed.destination, state.plan.document_library.target_prefix) == {}
            return
        assert databases_named(system.stack, f"crash\\_{index}\\_%") == [database]
        assert table_digests(system.stack, database) == table_digests(system.stack, system.source_database)
        restored = await checks.listing(s3, bed.target, prefix)
        assert sorted(restored) == bed.regular
        counts = await writes(s3, bed.target, prefix)
        doubled = rewritten(counts, at_most=case.copies)
        assert not doubled, f"objects written more than {case.copies}x: {doubled}"
        async with system.client() as client:
            resp = await client.get(f"/api/v1/restores/{restore_id}")
        assert resp.status_code == 200 and resp.json()["state"] == "Succeeded", resp.text
    finally:
        if not bed.points.crashed(case):
            bed.points.marker(case).touch()
        await log.close()
        await log.nc.close()


@pytest.mark.timeout(240)
async def test_control_the_write_count_sees_an_object_restored_twice(bed: Bed, s3: Any) -> None:
    """Positive control of the copy count above: one more copy of a restored object (what a restore that did not
    skip equal objects would make) is counted by the bucket and fails the check."""
    prefix = "control/"
    key = bed.regular[0]
    for _ in range(2):
        await s3.copy_object(
            Bucket=bed.target,
            Key=f"{prefix}{key}",
            CopySource={"Bucket": bed.destination, "Key": f"backups/{bed.backup_id}/documentlibrary/{key}"},
        )
    assert rewritten(await writes(s3, bed.target, prefix), at_most=1) == {f"{prefix}{key}": 2}


@pytest.mark.timeout(240)
async def test_the_projection_rebuilt_from_the_stream_equals_the_live_one(bed: Bed) -> None:
    """After the cases above (restores and verifications, crashes of the archiver mid-batch among them): the
    ``restores`` table, like ``backups`` and the events, rebuilt from the stream equals the live one."""
    assert await rebuild_equals_live(bed.system, f"rebuild_{uuid.uuid4().hex[:8]}") == 1
