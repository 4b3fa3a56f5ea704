"""Restores of azure backups, through the six services as real processes (one system for the module), the real
Azure SDKs against Azurite behind the counting copy proxy and the local Resource Manager.

A restore of an azure backup is a point-in-time restore of the backup's flexible server into a new server, and the
document library copied back by Blob Storage. Oracles never call the restorer's code: the stand-in's own record
(creates per server name, what each create asked for, the real database copy it made), psql on that copy (every
Liferay table's row count and ordered row md5 against the source), Azurite's listing (sizes and MD5s) and the
proxy's count of copies per destination.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import plan_document_library
from lc2backup.providers.azure import backup_name
from lc2backup.testing.azure.tokens import MANAGEMENT, mint_token
from tests.aws.support import request_backup
from tests.azure.support import ACCOUNT, AzureFakes, FlexibleServer, azure_spec, listing, seed_blobs
from tests.faults.crashing import Case, CrashPoints, crash_system, holding, liferay_database
from tests.faults.figures import FIGURES
from tests.faults.harness import eventually, supervising
from tests.restore.helpers import table_digests
from tests.support import ALL_SERVICES, System

pytestmark = [pytest.mark.azure, pytest.mark.restore, pytest.mark.e2e]

KILLED_WHILE_CREATING = Case("restorer", "restore:server-pending")  # polling a create Resource Manager holds


@dataclass
class Bed:
    system: System
    points: CrashPoints
    fakes: AzureFakes
    stack: LocalStack
    server: FlexibleServer
    source: str  # the live document library's container
    destination: str  # the backup container
    backup_id: str
    regular: list[str]
    md5s: dict[str, tuple[int, str]]  # the source library: key -> (size, MD5)


async def _backed_up(system: System, fakes: AzureFakes, server: FlexibleServer, source: str, destination: str) -> Any:
    async with fakes.client() as client:
        await client.create_container(source)
        await client.create_container(destination)
        layout = await seed_blobs(client, source, "dl/", plan_document_library(30))
        md5s = await listing(client, source, "dl/")
    backup_id = await request_backup(system, azure_spec(server, source, destination))
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    return backup_id, sorted(layout.regular), md5s


@pytest.fixture(scope="module")
def bed(stack: LocalStack, azure: AzureFakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """The six services (the restorer's crash point listed, disarmed) and one azure backup of a Liferay database
    and a 30-document library, made once for the module."""
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("azure-restore")
    azure.fast()
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    database, dsn = liferay_database(stack)
    server = FlexibleServer(azure.add_server(f"liferay-{unique}", dsn), database, dsn)
    points = CrashPoints(root / "markers", [KILLED_WHILE_CREATING])
    env = azure.env(LC2_AZURE__RESTORE_POLL_SECONDS="0.2", LC2_LEASE_SECONDS="3")
    system = crash_system(stack, nats_server, root, points, env, replicas=1)
    system.names = ALL_SERVICES
    system.start()
    try:
        source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
        backup_id, regular, md5s = asyncio.run(_backed_up(system, azure, server, source, destination))
        yield Bed(system, points, azure, stack, server, source, destination, backup_id, regular, md5s)
    finally:
        system.stop()
        nats_server.stop()
        azure.fast()


def _on_demand_completed(bed: Bed) -> datetime:
    """When the backup's on-demand backup completed, as the stand-in recorded it."""
    name = backup_name(bed.backup_id)
    (operation,) = [o for o in bed.fakes.arm.state()["operations"] if o["kind"] == "backup" and o["backupName"] == name]
    return datetime.fromisoformat(operation["endTime"].replace("Z", "+00:00"))


def _restored_server(bed: Bed, doc: dict[str, Any], restore_id: str) -> tuple[str, dict[str, Any]]:
    """(resource id, the stand-in's record) of the server a restore made: Ready, tagged by the restore, restored
    from the backup's server at its on-demand backup's completion."""
    plan = doc["status"]["plan"]["database"]
    assert plan["kind"] == "snapshot" and plan["targetDatabase"] == bed.server.database, plan
    server_id = bed.fakes.server_id(plan["targetInstance"])
    held = bed.fakes.arm.server(server_id)
    assert held is not None, f"no server {server_id} at the stand-in"
    assert held["state"] == "Ready" and held["tags"]["lc2-restore-id"] == restore_id, held
    restored_from = held["restoredFrom"]
    assert restored_from["sourceServerResourceId"] == bed.server.id
    assert datetime.fromisoformat(restored_from["pointInTime"]) == _on_demand_completed(bed)
    return server_id, held


def _create_again(bed: Bed, server_id: str) -> int:
    """Send Resource Manager a second create of ``server_id`` (what a restore that forgot its server would do);
    the status it answers."""
    token, _ = mint_token(MANAGEMENT)
    body = {"location": "eastus", "properties": {"createMode": "PointInTimeRestore"}}
    request = urllib.request.Request(
        f"{bed.fakes.arm.endpoint}{server_id}?api-version=2026-10-01",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(bed.fakes.tls.ca))
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.mark.timeout(240)  # the module's system and backup are made in the first test's time
async def test_restore_into_another_environment_makes_one_server_with_the_rows_and_copies_every_blob_back(
    bed: Bed,
) -> None:
    unique = uuid.uuid4().hex[:8]
    target = f"qa-dl-{unique}"
    async with bed.fakes.client() as client:
        await client.create_container(target)
    restore_id = await bed.system.restore(
        {
            "backupId": bed.backup_id,
            "target": {"projectId": "retail", "environment": "qa"},
            "documentLibrary": {"bucket": target, "prefix": "liferay/"},
        }
    )
    doc = await bed.system.wait_for_restore(restore_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)

    # the database: one server made, from the right server and time, holding the source's rows
    server_id, held = _restored_server(bed, doc, restore_id)
    assert server_id.endswith(f"/flexibleServers/{bed.server.id.rsplit('/', 1)[1]}-r{restore_id[:8]}")
    assert bed.fakes.arm.create_requests(server_id) == 1
    copy = held["databaseCopies"][bed.server.database]
    assert table_digests(bed.stack, copy) == table_digests(bed.stack, bed.server.database)

    # positive control: a second create of the server is counted at the stand-in (and refused there)
    assert _create_again(bed, server_id) == 409
    assert bed.fakes.arm.create_requests(server_id) == 2

    # the document library: every document with its MD5, each copied once, no generated file
    async with bed.fakes.client() as client:
        restored = await listing(client, target, "liferay/")
    assert restored == {key: bed.md5s[key] for key in bed.regular}
    prefix = f"{ACCOUNT}/{target}/liferay/"
    started = {
        k[len(prefix) :]: n for k, n in bed.fakes.proxy.state()["copies_started"].items() if k.startswith(prefix)
    }
    assert started == dict.fromkeys(bed.regular, 1)


async def test_a_target_server_that_is_not_the_restores_is_rejected_by_name(bed: Bed) -> None:
    taken = f"taken-{uuid.uuid4().hex[:8]}"
    taken_id = bed.fakes.add_server(taken, bed.server.dsn)  # someone else's server (no lc2-restore-id tag)
    restore_id = await bed.system.restore(
        {
            "backupId": bed.backup_id,
            "include": "database",
            "target": {"projectId": "retail", "environment": "uat"},
            "database": {"instanceId": taken},
        }
    )
    doc = await bed.system.wait_for_restore(restore_id, timeout=60)
    assert doc["state"] == "Rejected", json.dumps(doc, indent=1)
    messages = " ".join(p["message"] for p in doc["status"]["problems"])
    assert taken_id in messages and "lc2-restore-id" in messages, messages
    assert bed.fakes.arm.create_requests(taken_id) == 0


@pytest.mark.faults
@pytest.mark.timeout(180)
async def test_a_restorer_killed_while_azure_creates_the_server_leaves_one_create(bed: Bed) -> None:
    """SIGKILL while the create is InProgress (Resource Manager holds it until the kill): the restarted restorer
    finds its server by name and tag and follows it; one create, one operation asked for once."""
    case, system = KILLED_WHILE_CREATING, bed.system
    release = holding(bed.fakes.arm.hold)
    bed.points.arm(case)
    try:
        async with supervising(system, expected=[case.service]) as supervisor:
            restore_id = await system.restore(
                {
                    "backupId": bed.backup_id,
                    "include": "database",
                    "target": {"projectId": "retail", "environment": "stage"},
                }
            )

            async def crashed() -> bool:
                return bed.points.crashed(case)

            await eventually(f"{case} reached", crashed, system)
            release()
            doc = await system.wait_for_restore(restore_id, timeout=120)
        FIGURES.crashes[case.service] += 1
        FIGURES.points.add(("azure-restore", case.service, case.point))
        FIGURES.restarts += len(supervisor.restarted)
    finally:
        release()
        if not bed.points.crashed(case):
            bed.points.marker(case).touch()
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    server_id, _ = _restored_server(bed, doc, restore_id)
    assert bed.fakes.arm.create_requests(server_id) == 1
    (operation,) = [
        o for o in bed.fakes.arm.state()["operations"] if o["kind"] == "restore" and o["resourceId"] == server_id
    ]
    assert (operation["status"], operation["requests"]) == ("Succeeded", 1)


async def test_a_verification_checks_the_new_server_and_the_blobs_then_removes_them(bed: Bed) -> None:
    async with bed.system.client() as client:
        resp = await client.post(f"/api/v1/backups/{bed.backup_id}/verify")
        assert resp.status_code == 202, resp.text
        restore_id = resp.json()["restoreId"]
    doc = await bed.system.wait_for_restore(restore_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    verdict = doc["status"]["verification"]
    assert verdict["passed"] is True and verdict["summary"]["objects"] == len(bed.regular)
    checks = " ".join(verdict["checks"])
    assert "is Ready, restored from" in checks and "contents are not compared" in checks, checks

    # the scratch server was made once and is gone, with its database copy; the scratch blobs too
    server_id = bed.fakes.server_id(doc["status"]["plan"]["database"]["targetInstance"])
    assert bed.fakes.arm.create_requests(server_id) == 1 and bed.fakes.arm.server(server_id) is None
    scratch = doc["status"]["plan"]["documentLibrary"]["targetPrefix"]
    async with bed.fakes.client() as client:
        assert await listing(client, bed.destination, scratch) == {}
        verdicts = await listing(client, bed.destination, f"backups/{bed.backup_id}/verifications/")
    assert list(verdicts) == [f"{restore_id}.json"]


async def test_a_mysql_backup_restores_into_a_new_mysql_server(bed: Bed) -> None:
    """The same point-in-time restore on a MySQL flexible server (recorded by the stand-in: there is no MySQL
    behind it, so no rows are compared)."""
    mysql = FlexibleServer(bed.fakes.add_mysql_server(f"shop-{uuid.uuid4().hex[:8]}"), "shop", "")
    backup_id = await request_backup(bed.system, azure_spec(mysql, bed.source, bed.destination, environment="shop"))
    assert (await bed.system.wait_for(backup_id, timeout=120))["state"] == "Succeeded"
    restore_id = await bed.system.restore({"backupId": backup_id, "include": "database"})
    doc = await bed.system.wait_for_restore(restore_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    target = doc["status"]["plan"]["database"]["targetInstance"]
    server_id = bed.fakes.server_id(target, "mysql")
    held = bed.fakes.arm.server(server_id)
    assert held is not None and held["state"] == "Ready" and held["tags"]["lc2-restore-id"] == restore_id
    assert held["restoredFrom"]["sourceServerResourceId"] == mysql.id
    assert bed.fakes.arm.create_requests(server_id) == 1
