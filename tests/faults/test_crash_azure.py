"""SIGKILL every service at the step boundaries of an Azure-provider backup (the real Azure SDKs against Azurite
behind the counting copy proxy, and the local Resource Manager).

Besides the event boundaries, db-export is killed while it polls an on-demand backup still InProgress and right
after recording a long-term-retention (LTR) backup that is still running (Resource Manager holds its operations
until the crash), and doclib-transfer in the middle of a copy whose batch has copies still pending at the proxy.
After each case, counted at the servers: one on-demand backup and one LTR backup under the backup's name, each
asked for once (the stand-in answers a second start of a known name with the same operation, so it is the
requests per operation that would show a second start); the LTR's dump written once; every document copy started
once and written once (``IfMissing`` makes a redelivered copy adopt the destination); metadata.json written once
and equal to what was recorded; the lane free; the projection equal to the fold of the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.azurite import ACCOUNT_KEY
from lc2backup.devstack.seeding import plan_document_library
from lc2backup.domain import BackupLayout
from lc2backup.providers.azure import backup_name
from tests.azure.support import ACCOUNT, AzureFakes, FlexibleServer, azure_spec, listing, read_blob, seed_blobs
from tests.faults import checks
from tests.faults.crashing import Case, CrashPoints, crash_system, holding, liferay_database, run_case
from tests.faults.harness import EventLog, connect, projection_matches_the_log, rebuild_equals_live
from tests.metadata_json import read_metadata_json
from tests.support import System

pytestmark = [pytest.mark.faults, pytest.mark.azure, pytest.mark.e2e]

ARM: tuple[str, dict[str, str]] = ("arm", {})  # Resource Manager keeps its operations InProgress until the crash
LTR_HELD = ("arm", {"type": "dump"})  # the same for an LTR backup alone (a dump takes no on-demand backup)
CASES = [
    Case("db-export", "before-append:DatabaseSnapshotStarted"),
    Case("db-export", "after-append:DatabaseSnapshotStarted"),
    Case("db-export", "nak:db-export", hold=ARM),  # killed while the on-demand backup is InProgress
    Case("db-export", "before-append:DatabaseExportStarted"),
    Case("db-export", "after-append:DatabaseExportStarted", hold=LTR_HELD),  # killed while the LTR runs
    Case("db-export", "before-append:DatabaseExportCompleted"),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferStarted"),
    Case("doclib-transfer", "copy:object@6"),  # mid-batch: the batch's other copies started, still pending
    Case("doclib-transfer", "after-append:DocumentLibraryTransferProgressed@2"),
    Case("doclib-transfer", "before-append:DocumentLibraryTransferCompleted"),
    Case("metadata", "before-append:BackupMetadataWritten"),
    Case("metadata", "after-append:BackupMetadataWritten"),
]
AZURE_ONCE = (*checks.SUCCEEDED_ONCE, "DatabaseSnapshotStarted", "DatabaseSnapshotCompleted")
PENDING_POLLS = 2  # every copy is seen pending twice, so a kill mid-batch leaves copies running at the server


@dataclass
class Bed:
    system: System
    points: CrashPoints
    fakes: AzureFakes
    stack: LocalStack
    source: str
    destination: str
    regular: list[str]
    md5s: dict[str, tuple[int, str]]


async def _seed(fakes: AzureFakes, source: str, destination: str) -> tuple[list[str], dict[str, tuple[int, str]]]:
    async with fakes.client() as client:
        await client.create_container(source)
        await client.create_container(destination)
        layout = await seed_blobs(client, source, "dl/", plan_document_library(30))
        return sorted(layout.regular), await listing(client, source, "dl/")


@pytest.fixture(scope="module", params=[2], ids=["2-replicas"])
def bed(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Bed]:
    """One system with two replicas of every service sharing each consumer (a crash kills whichever replica
    reaches the point) and its own Azure stand-ins (their holds and counts are the module's)."""
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("crash-azure")
    fakes = AzureFakes.start(root / "azure")
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
    regular, md5s = asyncio.run(_seed(fakes, source, destination))
    fakes.proxy.configure(pending_polls=PENDING_POLLS)
    points = CrashPoints(root / "markers", CASES)
    env = fakes.env(LC2_AZURE__COPY_WORKERS="4", LC2_AZURE__PROGRESS_INTERVAL_SECONDS="0.05")
    system = crash_system(stack, nats_server, root, points, env, request.param)
    system.start()
    try:
        yield Bed(system, points, fakes, stack, source, destination, regular, md5s)
    finally:
        system.stop()
        nats_server.stop()
        fakes.stop()


def _holder(bed: Bed, case: Case) -> Callable[[bool], None] | None:
    return None if case.hold is None else bed.fakes.arm.hold


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_sigkill_at_every_step_boundary_of_an_azure_backup_starts_nothing_twice(bed: Bed, case: Case) -> None:
    system, fakes = bed.system, bed.fakes
    lane = f"crash-{CASES.index(case)}"
    database, dsn = liferay_database(bed.stack)
    server = FlexibleServer(fakes.add_server(f"liferay-{lane}", dsn), database, dsn)
    log = EventLog(await connect(system))
    release = holding(_holder(bed, case))

    async def submit() -> Sequence[str]:
        spec = azure_spec(server, bed.source, bed.destination, environment=lane)
        spec["database"].update(case.hold[1] if case.hold else {})
        return [await log.request(lane, spec)]

    try:
        (state,) = await run_case(system, log, bed.points, case, "azure", submit, release)
        assert state.state == "Succeeded", state.message
        history = await log.history(state.backup_id)
        dump = case.hold == LTR_HELD
        checks.check_events_once(history, checks.SUCCEEDED_ONCE if dump else AZURE_ONCE)
        _check_backups_once(bed, state.backup_id, server, on_demand=not dump)
        await _check_copies_once(bed, state.backup_id)
        await _check_metadata_once(bed, state.backup_id, history)
        await checks.check_lane_released(log, state)
        await projection_matches_the_log(log, system, [state.backup_id])
    finally:
        release()
        await log.close()
        await log.nc.close()


def _ours(arm: dict[str, Any], backup_id: str) -> dict[str, list[dict[str, Any]]]:
    """The backup's operations at Resource Manager by kind (``counts`` are the whole fake's, so filter by name)."""
    name = backup_name(backup_id)
    found: dict[str, list[dict[str, Any]]] = {"backup": [], "ltr": []}
    for operation in arm["operations"]:
        if operation["backupName"] == name:
            found[operation["kind"]].append(operation)
    return found


def _check_backups_once(bed: Bed, backup_id: str, server: FlexibleServer, *, on_demand: bool) -> None:
    """One on-demand backup (none for a dump) and one LTR backup, each succeeded and each asked for once; the dump
    the LTR wrote into the backup container written once (counted at the proxy it writes through)."""
    ours = _ours(bed.fakes.arm.state(), backup_id)
    assert len(ours["backup"]) == (1 if on_demand else 0), ours["backup"]
    assert len(ours["ltr"]) == 1, ours["ltr"]
    for operation in [*ours["backup"], *ours["ltr"]]:
        assert operation["status"] == "Succeeded", operation
        assert operation["requests"] == 1, f"{operation['kind']} {operation['backupName']} started again: {operation}"
    dump = f"{ACCOUNT}/{bed.destination}/{backup_name(backup_id)}/{server.database}.dump"
    assert bed.fakes.proxy.state()["writes"].get(dump) == 1, dump


async def _check_copies_once(bed: Bed, backup_id: str) -> None:
    """Every document copied with its MD5; each copy started once and each destination written once at the proxy;
    the manifest lists each document once and is its parts in order."""
    layout = BackupLayout(bed.destination, f"backups/{backup_id}/", "azure")
    proxy = bed.fakes.proxy.state()
    async with bed.fakes.client() as client:
        copied = await listing(client, bed.destination, layout.document_library_prefix)
        manifest = await read_blob(client, bed.destination, layout.manifest_key)
        parts = sorted(await listing(client, bed.destination, layout.manifest_parts_prefix))
        joined = b"".join([await read_blob(client, bed.destination, layout.manifest_parts_prefix + p) for p in parts])
    assert copied == {key: bed.md5s[key] for key in bed.regular}
    prefix = f"{ACCOUNT}/{bed.destination}/{layout.document_library_prefix}"
    started = {k[len(prefix) :]: n for k, n in proxy["copies_started"].items() if k.startswith(prefix)}
    assert started == dict.fromkeys(bed.regular, 1), {k: n for k, n in started.items() if n != 1}
    written = {k[len(prefix) :]: n for k, n in proxy["writes"].items() if k.startswith(prefix)}
    assert written == dict.fromkeys(bed.regular, 1), {k: n for k, n in written.items() if n != 1}
    keys = [json.loads(line)["key"] for line in manifest.decode().splitlines()]
    assert sorted(keys) == bed.regular, "the manifest lists each copied document exactly once"
    assert joined == manifest, "the manifest is its parts in order"


async def _check_metadata_once(bed: Bed, backup_id: str, history: list[Any]) -> None:
    key = f"backups/{backup_id}/metadata.json"
    assert bed.fakes.proxy.state()["writes"].get(f"{ACCOUNT}/{bed.destination}/{key}") == 1
    async with bed.fakes.client() as client:
        body = await read_blob(client, bed.destination, key)
    (written,) = [e for e in history if e.envelope.type == "BackupMetadataWritten"]
    assert written.envelope.data["sha256"] == hashlib.sha256(body).hexdigest()
    assert read_metadata_json(body)["backupId"] == backup_id


@pytest.mark.timeout(60)
async def test_the_proxy_counts_a_second_copy_of_a_blob_that_ifmissing_refuses(bed: Bed) -> None:
    """Positive control of the copy counts: a second Copy Blob to a destination is counted (2) when sent without
    ``IfMissing``; with it, Azure refuses it (409) and the count stays."""
    destination = f"control/{uuid.uuid4().hex[:8]}"
    key = f"{ACCOUNT}/{bed.destination}/{destination}"
    credential = {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
    ca = str(bed.fakes.tls.ca)
    async with BlobServiceClient(bed.fakes.proxy.account_url, credential=credential, connection_verify=ca) as client:
        url = client.get_blob_client(bed.source, f"dl/{bed.regular[0]}").url
        blob = client.get_blob_client(bed.destination, destination)
        await blob.start_copy_from_url(url, match_condition=MatchConditions.IfMissing)
        with pytest.raises(ResourceExistsError):
            await blob.start_copy_from_url(url, match_condition=MatchConditions.IfMissing)
        assert bed.fakes.proxy.state()["copies_started"][key] == 1
        await blob.start_copy_from_url(url)
    assert bed.fakes.proxy.state()["copies_started"][key] == 2


@pytest.mark.timeout(240)
async def test_after_every_azure_crash_a_rebuild_of_the_projection_equals_the_live_one(bed: Bed) -> None:
    await rebuild_equals_live(bed.system, f"rebuild_{uuid.uuid4().hex[:8]}")
