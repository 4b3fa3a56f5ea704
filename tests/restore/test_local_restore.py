"""Restores and verifications on the local provider, through the six services as real processes.

Oracles read the servers with their own queries (psql, the S3 client), never through the restorer's code: a
table's rows are compared by an md5 over each row's text, ordered (not the restorer's order-independent sum),
objects by size and MD5 of their bytes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import (
    LIFERAY_TABLES,
)
from tests.faults.proxy import TcpProxy
from tests.polling import eventually
from tests.restore.helpers import backed_up, databases_named, objects_under, table_digests
from tests.support import ALL_SERVICES, System

pytestmark = [pytest.mark.e2e, pytest.mark.restore]


async def test_restore_into_another_environment_equals_the_source(
    system: System, s3: Any, buckets: tuple[str, str], unique: str
) -> None:
    source, destination = buckets
    backup_id, layout = await backed_up(system, s3, buckets)
    target_bucket = f"tgt-{unique}"
    await s3.create_bucket(Bucket=target_bucket)
    database = f"qa_{unique}"
    restore_id = await system.restore(
        {
            "backupId": backup_id,
            "target": {"projectId": "retail", "environment": "qa"},
            "database": {"databaseName": database},
            "documentLibrary": {"bucket": target_bucket, "prefix": "liferay"},
        }
    )
    doc = await system.wait_for_restore(restore_id)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    status = doc["status"]
    assert status["database"]["state"] == "Completed" and status["documentLibrary"]["state"] == "Completed"
    assert (doc["targetProjectId"], doc["targetEnvironment"]) == ("retail", "qa")

    # the database: every table equal, row for row, and exactly one database made
    assert table_digests(system.stack, database) == table_digests(system.stack, system.source_database)
    assert databases_named(system.stack, f"{database}%") == [database]

    # the document library: every regular object equal (size and MD5), generated files absent
    restored = await objects_under(s3, target_bucket, "liferay/")
    originals = await objects_under(s3, source, "liferay/")
    assert set(restored) == set(layout.regular)
    assert all(restored[key] == originals[key] for key in layout.regular)

    types = [e["type"] for e in await _restore_events(system, restore_id)]
    assert types[:3] == ["RestoreRequested", "RestoreAdmitted", "RestoreValidated"]
    assert types[-1] == "RestoreSucceeded" and types.count("RestoreSucceeded") == 1


async def _restore_events(system: System, restore_id: str) -> list[dict[str, Any]]:
    async with system.client() as client:
        resp = await client.get(f"/api/v1/restores/{restore_id}/events")
        resp.raise_for_status()
        items: list[dict[str, Any]] = resp.json()["items"]
        return items


async def test_a_live_target_without_confirmation_and_a_busy_target_are_rejected(
    system: System, s3: Any, buckets: tuple[str, str]
) -> None:
    source, _ = buckets
    backup_id, _ = await backed_up(system, s3, buckets, files=10)
    before = sorted(databases_named(system.stack, "%"))
    restore_id = await system.restore({"backupId": backup_id, "database": {"databaseName": system.source_database}})
    doc = await system.wait_for_restore(restore_id)
    assert doc["state"] == "Rejected", json.dumps(doc, indent=1)
    problems = doc["status"]["problems"]
    assert any("overwrite.confirm" in p["message"] and p["field"] == "spec.database.databaseName" for p in problems)
    assert not any(e["type"].startswith("DatabaseRestore") for e in await _restore_events(system, restore_id))
    # nothing was written, read at the servers: no database made, nothing under the default restore prefix
    assert sorted(databases_named(system.stack, "%")) == before
    assert await objects_under(s3, source, "liferay.restore-") == {}

    # one restore per target environment at a time: a second one while the first runs is Rejected naming it,
    # and once the first has ended the target is free again
    into_qa = {"backupId": backup_id, "target": {"projectId": "retail", "environment": "qa"}}
    first = await system.restore(into_qa)
    second = await system.restore(into_qa)
    doc = await system.wait_for_restore(second)
    assert doc["state"] == "Rejected", json.dumps(doc, indent=1)
    assert f"restore {first} into retail/qa is still running" in doc["status"]["problems"][0]["message"]
    assert (await system.wait_for_restore(first))["state"] == "Succeeded"
    third = await system.restore(into_qa)
    assert (await system.wait_for_restore(third))["state"] == "Succeeded"


async def test_verification_passes_and_is_the_last_proven_restorable_point(
    system: System, s3: Any, buckets: tuple[str, str]
) -> None:
    _, destination = buckets
    backup_id, layout = await backed_up(system, s3, buckets, files=30)
    async with system.client() as client:
        resp = await client.post(f"/api/v1/backups/{backup_id}/verify")
        assert resp.status_code == 202, resp.text
        restore_id = resp.json()["restoreId"]
    doc = await system.wait_for_restore(restore_id)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    verdict = doc["status"]["verification"]
    assert verdict["passed"] is True and verdict["findings"] == []
    assert verdict["summary"]["objects"] == len(layout.regular)
    assert verdict["summary"]["tables"] >= len(LIFERAY_TABLES)
    # the scratch targets are gone (read at the servers)
    assert databases_named(system.stack, "lc2verify_%") == []
    assert await objects_under(s3, destination, "backups/lc2-verify/") == {}
    # the verdict is written next to the backup, metadata.json untouched
    folder = f"backups/{backup_id}/"
    listed = await s3.list_objects_v2(Bucket=destination, Prefix=f"{folder}verifications/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [f"{folder}verifications/{restore_id}.json"]
    async with system.client() as client:
        resp = await client.get("/api/v1/restorable", params={"projectId": "retail", "environment": "dev"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["backupId"] == backup_id and resp.json()["restoreId"] == restore_id


async def test_a_damaged_backup_fails_its_restore_and_its_verification_naming_the_damage(
    system: System, s3: Any, buckets: tuple[str, str], unique: str
) -> None:
    """Never Succeeded on damage: figures that no longer match fail the verification (naming the table, the
    scratch database kept for inspection); a missing object fails the document library naming the object; one
    byte changed in the dump fails the database naming the dump."""
    _, destination = buckets
    backup_id, layout = await backed_up(system, s3, buckets, files=20)
    folder = f"backups/{backup_id}/"
    figures_key = f"{folder}database/{system.source_database}.figures.json"
    figures = json.loads(await (await s3.get_object(Bucket=destination, Key=figures_key))["Body"].read())
    table = next(t for t in figures["tables"] if t["name"] == "user_")
    table["rows"] += 1
    await s3.put_object(Bucket=destination, Key=figures_key, Body=json.dumps(figures).encode())
    async with system.client() as client:
        resp = await client.post(f"/api/v1/backups/{backup_id}/verify")
        assert resp.status_code == 202, resp.text
        verification = resp.json()["restoreId"]
    doc = await system.wait_for_restore(verification)
    assert doc["state"] == "Failed", json.dumps(doc, indent=1)
    verdict = doc["status"]["verification"]
    assert verdict["passed"] is False
    assert verdict["findings"] == [
        f"table public.user_: {table['rows'] - 1} rows restored, {table['rows']} at backup time"
    ]
    scratch = doc["status"]["plan"]["database"]["targetDatabase"]
    assert databases_named(system.stack, scratch) == [scratch]  # kept for inspection
    async with system.client() as client:
        resp = await client.get("/api/v1/restorable", params={"projectId": "retail", "environment": "dev"})
    assert resp.json()["backupId"] is None  # a failed verification proves nothing

    # kept for keepFailedHours, then removed: with 0, at once after the end (after RestoreFailed in the log)
    async with system.client() as client:
        resp = await client.post(f"/api/v1/backups/{backup_id}/verify", params={"keepFailedHours": 0})
        assert resp.status_code == 202, resp.text
        expiring = resp.json()["restoreId"]
    doc = await system.wait_for_restore(expiring)
    assert doc["state"] == "Failed" and doc["status"]["verification"]["passed"] is False
    short_lived = doc["status"]["plan"]["database"]["targetDatabase"]

    async def removed() -> list[str]:
        types = [e["type"] for e in await _restore_events(system, expiring)]
        assert types[-2:] == ["RestoreFailed", "ScratchRemoved"], types
        return types

    await eventually(removed, timeout=30, what="the failed verification's scratch removed", context=system.logs)
    assert databases_named(system.stack, short_lived) == []
    assert databases_named(system.stack, scratch) == [scratch]  # the other one is still kept (24 h)

    missing = sorted(layout.regular)[3]
    await s3.delete_object(Bucket=destination, Key=f"{folder}documentlibrary/{missing}")
    without_object = await system.restore(
        {"backupId": backup_id, "include": "documentLibrary", "target": {"projectId": "retail", "environment": "qa"}}
    )
    doc = await system.wait_for_restore(without_object)
    assert doc["state"] == "Failed", json.dumps(doc, indent=1)
    assert missing in doc["status"]["reasons"]["documentLibrary"]

    dump_key = f"{folder}database/{system.source_database}.dump"
    dump = bytearray(await (await s3.get_object(Bucket=destination, Key=dump_key))["Body"].read())
    dump[len(dump) // 2] ^= 0xFF
    await s3.put_object(Bucket=destination, Key=dump_key, Body=bytes(dump))
    corrupted = await system.restore(
        {"backupId": backup_id, "include": "database", "database": {"databaseName": f"bad_{unique}"}}
    )
    doc = await system.wait_for_restore(corrupted)
    assert doc["state"] == "Failed", json.dumps(doc, indent=1)
    assert f"s3://{destination}/{dump_key}" in doc["status"]["reasons"]["database"]
    assert databases_named(system.stack, f"bad_{unique}") == []  # the target name never held a partial restore


async def test_a_restore_past_its_deadline_fails_saying_so_and_stops(
    stack: LocalStack, nats_server: NatsServer, tmp_path: Path, unique: str, s3: Any, buckets: tuple[str, str]
) -> None:
    """A restore that cannot go on (here: the restorer's object store holds every answer) does not stay in progress:
    past the restorer's deadline the next poll fails it with the reason, and once the store answers again the
    stopped work records nothing more."""
    port = int(stack.s3.endpoint.rsplit(":", 1)[1])
    store = TcpProxy("127.0.0.1", port).start()
    restorer = {"LC2_S3__ENDPOINT_URL": store.url, "LC2_DEADLINE_HOURS": str(4 / 3600)}  # 4 s
    system = System.local(
        stack, nats_server, tmp_path / "logs", unique, service_env={"restorer": restorer}, names=ALL_SERVICES
    )
    system.start()
    try:
        backup_id, _ = await backed_up(system, s3, buckets, files=10)
        store.hold()
        restore_id = await system.restore(
            {"backupId": backup_id, "target": {"projectId": "retail", "environment": "qa"}}
        )
        doc = await system.wait_for_restore(restore_id, timeout=60)
        assert doc["state"] == "Failed", json.dumps(doc, indent=1)
        reasons = doc["status"]["reasons"]
        assert set(reasons) == {"database", "documentLibrary"}
        assert all("did not finish within 0:00:04" in reason for reason in reasons.values()), reasons
        store.release()
        await asyncio.sleep(3)  # the stopped work, had it gone on, would have recorded by now
        types = [e["type"] for e in await _restore_events(system, restore_id)]
        assert types[-1] == "RestoreFailed" and "RestoreValidated" not in types, types
    finally:
        store.release()
        system.stop()
        store.close()
