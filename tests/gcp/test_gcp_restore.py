"""Restores of GCP backups through the six services as real processes: the real Google clients against
fake-gcs-server and the local Cloud SQL Admin and Storage Transfer servers, whose import loads the SQL export into
a real PostgreSQL database with psql and whose transfer really copies between buckets.

One system and one backup for the module. Oracles read the servers directly, never through the restorer's code: a
table's rows by an md5 over each row's text in order (psql), objects by their bytes (downloaded and hashed), and
"exactly once" by the stand-ins' own counts (imports per instance/database, transfer operations per job, writes
per object), each with a positive control showing a second effect would be counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import google.auth
import pytest
from googleapiclient import discovery

from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.devstack.seeding import DocumentLibraryLayout, plan_document_library
from lc2backup.providers.gcp import restore_job_name
from tests.aws.support import request_backup
from tests.faults.crashing import Case, CrashPoints, holding, liferay_database
from tests.faults.harness import eventually, supervising
from tests.gcp.support import PROJECT, CloudSql, GcpFakes, gcp_spec, seed_gcs
from tests.polling import eventually as poll
from tests.restore.helpers import RESTORED_ONCE, table_digests
from tests.support import ALL_SERVICES, System

pytestmark = [pytest.mark.gcp, pytest.mark.e2e, pytest.mark.restore]

CRASH = Case("restorer", "restore:import-running")  # SIGKILL while Cloud SQL's IMPORT operation is RUNNING


@dataclass
class Bed:
    system: System
    fakes: GcpFakes
    points: CrashPoints
    instance: CloudSql
    backup_id: str
    source: str
    destination: str
    layout: DocumentLibraryLayout
    unique: str

    @property
    def gcs(self) -> Any:
        return self.fakes.client()

    def target_bucket(self, name: str) -> str:
        bucket = f"tgt-{name}-{self.unique}"
        self.gcs.create_bucket(bucket)
        return bucket


@pytest.fixture(scope="module")
def bed(stack: LocalStack, gcp: GcpFakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("gcp-restore")
    gcp.fast()
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    points = CrashPoints(root / "markers", [CRASH])
    env = {**gcp.env(), "LC2_GCP__RESTORE_POLL_SECONDS": "0.2", "LC2_POLL_INTERVAL_SECONDS": "0.5"}
    system = System.local(
        stack, nats_server, root / "logs", unique, env, service_env=points.service_env(), names=ALL_SERVICES
    )
    system.start()
    try:
        database, dsn = liferay_database(stack)
        instance = CloudSql(f"liferay-{unique}", database, dsn)
        gcp.sqladmin.add_instance(PROJECT, instance.name, dsn)
        source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
        gcs = gcp.client()
        gcs.create_bucket(source)
        gcs.create_bucket(destination)
        layout = asyncio.run(seed_gcs(gcs, source, "dl/", plan_document_library(40)))
        backup_id = asyncio.run(_backup(system, gcp_spec(instance, source, destination)))
        yield Bed(system, gcp, points, instance, backup_id, source, destination, layout, unique)
    finally:
        gcp.fast()
        system.stop()
        nats_server.stop()


async def _backup(system: System, spec: dict[str, Any]) -> str:
    backup_id = await request_backup(system, spec)
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    return backup_id


async def _contents(gcs: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key (without ``prefix``) -> (size, md5 of the bytes), downloaded from fake-gcs-server."""

    def read() -> dict[str, tuple[int, str]]:
        found = {}
        for blob in gcs.list_blobs(bucket, prefix=prefix):
            body = blob.download_as_bytes()
            found[blob.name[len(prefix) :]] = (len(body), hashlib.md5(body).hexdigest())
        return found

    return await asyncio.to_thread(read)


async def _types(system: System, restore_id: str) -> list[str]:
    async with system.client() as client:
        resp = await client.get(f"/api/v1/restores/{restore_id}/events")
        resp.raise_for_status()
        items: list[dict[str, Any]] = resp.json()["items"]
        return [str(e["type"]) for e in items]


def _databases(stack: LocalStack, pattern: str) -> list[str]:
    return stack.postgres.psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{pattern}'").split()


async def _restored_equal(bed: Bed, restore_id: str, doc: dict[str, Any], bucket: str, prefix: str) -> str:
    """The restore's database equals the source table by table, each object is back with its bytes, no generated
    file came back; exactly one import into that database and one transfer operation, at the stand-ins."""
    database = str(doc["status"]["plan"]["database"]["targetDatabase"])
    assert database == f"{bed.instance.database}_r{restore_id.replace('-', '')[:8]}"
    stack = bed.system.stack
    assert table_digests(stack, database) == table_digests(stack, bed.instance.database)
    restored = await _contents(bed.gcs, bucket, prefix)
    originals = await _contents(bed.gcs, bed.source, "dl/")
    assert set(restored) == set(bed.layout.regular)  # the generated files were never backed up
    assert all(restored[key] == originals[key] for key in bed.layout.regular)
    assert bed.fakes.sqladmin.state()["counts"]["imports"].get(f"{bed.instance.name}/{database}") == 1
    sts = bed.fakes.sts.state()
    job = restore_job_name(restore_id)
    assert [j["name"] for j in sts["jobs"]].count(job) == 1
    assert len([o for o in sts["operations"] if o["metadata"].get("transferJobName") == job]) == 1
    written = {k: n for k, n in sts["counts"]["writes"].items() if k.startswith(f"{bucket}/{prefix}")}
    assert sorted(written.values()) == [1] * len(bed.layout.regular), written
    types = await _types(bed.system, restore_id)
    for event_type in RESTORED_ONCE:
        assert types.count(event_type) == 1, (event_type, types)
    return database


async def test_restore_into_another_environment_equals_the_source(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = bed.target_bucket("qa")
    restore_id = await bed.system.restore(
        {
            "backupId": bed.backup_id,
            "target": {"projectId": "retail", "environment": "qa"},
            "documentLibrary": {"bucket": bucket, "prefix": "dl"},
        }
    )
    doc = await bed.system.wait_for_restore(restore_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    assert (doc["targetProjectId"], doc["targetEnvironment"]) == ("retail", "qa")
    database = await _restored_equal(bed, restore_id, doc, bucket, "dl/")

    # positive control of the import count: a second import into that database, straight through the API, is
    # counted (it fails at its first statement, the tables being there: the database is left as it was)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(bed.fakes.adc))
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    sql = discovery.build(
        "sqladmin",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": bed.fakes.sqladmin.endpoint},
    )
    artefact = doc["status"]["plan"]["database"]["artefact"]
    context = {"fileType": "SQL", "uri": artefact, "database": database}
    operation = sql.instances().import_(project=PROJECT, instance=bed.instance.name, body={"importContext": context})
    name = (await asyncio.to_thread(operation.execute))["name"]

    def done() -> bool:
        return bool(sql.operations().get(project=PROJECT, operation=name).execute()["status"] == "DONE")

    await poll(lambda: asyncio.to_thread(done), timeout=30, what="the control import DONE")
    sql.close()
    assert bed.fakes.sqladmin.state()["counts"]["imports"][f"{bed.instance.name}/{database}"] == 2


async def test_restore_onto_the_live_database_is_rejected(bed: Bed) -> None:
    """Without overwrite.confirm at intake; with it, at validation: Cloud SQL cannot keep the live database aside
    (no rename), so a GCP restore never replaces it. Nothing is created or imported either way."""
    live = f"{bed.instance.name}/{bed.instance.database}"
    before = bed.fakes.sqladmin.state()["counts"]
    unconfirmed = await bed.system.restore(
        {"backupId": bed.backup_id, "database": {"databaseName": bed.instance.database}}
    )
    doc = await bed.system.wait_for_restore(unconfirmed)
    assert doc["state"] == "Rejected", json.dumps(doc, indent=1)
    problems = doc["status"]["problems"]
    assert any("overwrite.confirm" in p["message"] and p["field"] == "spec.database.databaseName" for p in problems)

    confirmed = await bed.system.restore(
        {
            "backupId": bed.backup_id,
            "include": "database",
            "database": {"databaseName": bed.instance.database, "overwrite": {"confirm": live}},
        }
    )
    doc = await bed.system.wait_for_restore(confirmed)
    assert doc["state"] == "Rejected", json.dumps(doc, indent=1)
    assert any("cannot rename a database" in p["message"] for p in doc["status"]["problems"]), doc["status"]
    for restore_id in (unconfirmed, confirmed):
        assert not any(t.startswith("DatabaseRestore") for t in await _types(bed.system, restore_id))
    after = bed.fakes.sqladmin.state()["counts"]
    assert (after["databases.insert"], after["instances.import"]) == (
        before["databases.insert"],
        before["instances.import"],
    )


async def test_a_verification_passes_says_what_it_could_not_compare_and_removes_its_scratch(bed: Bed) -> None:
    async with bed.system.client() as client:
        resp = await client.post(f"/api/v1/backups/{bed.backup_id}/verify")
        assert resp.status_code == 202, resp.text
        restore_id = resp.json()["restoreId"]
    doc = await bed.system.wait_for_restore(restore_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    verdict = doc["status"]["verification"]
    assert verdict["passed"] is True and verdict["findings"] == []
    assert verdict["summary"]["objects"] == len(bed.layout.regular)
    assert any("no per-table figures" in check for check in verdict.get("checks", [])), verdict
    plan = doc["status"]["plan"]
    scratch = plan["database"]["targetDatabase"]
    assert scratch == f"lc2verify_{restore_id.replace('-', '')[:8]}"
    assert bed.fakes.sqladmin.state()["counts"]["imports"].get(f"{bed.instance.name}/{scratch}") == 1
    # the scratch targets are gone, read at the servers; the verdict sits next to the backup
    assert _databases(bed.system.stack, scratch) == []
    prefix = plan["documentLibrary"]["targetPrefix"]
    assert await _contents(bed.gcs, bed.destination, prefix) == {}
    folder = f"backups/{bed.backup_id}/"
    written = sorted(b.name for b in bed.gcs.list_blobs(bed.destination, prefix=f"{folder}verifications/"))
    assert written == [f"{folder}verifications/{restore_id}.json"]
    body = json.loads(bed.gcs.bucket(bed.destination).blob(written[0]).download_as_bytes())
    assert (body["restoreId"], body["passed"]) == (restore_id, True)


@pytest.mark.faults
@pytest.mark.timeout(240)
async def test_a_sigkill_while_the_import_runs_imports_and_transfers_once(bed: Bed) -> None:
    system, points = bed.system, bed.points
    bucket = bed.target_bucket("crash")
    release = holding(lambda on: bed.fakes.sqladmin.hold(on, types=["IMPORT"]))  # RUNNING until the crash
    points.arm(CRASH)
    try:
        async with supervising(system, expected=[CRASH.service]) as supervisor:
            restore_id = await system.restore(
                {
                    "backupId": bed.backup_id,
                    "target": {"projectId": "retail", "environment": "crash"},
                    "documentLibrary": {"bucket": bucket, "prefix": "dl"},
                }
            )

            async def crashed() -> bool:
                return points.crashed(CRASH)

            await eventually(f"{CRASH} reached", crashed, system)
            running = [o for o in bed.fakes.sqladmin.state()["operations"] if o["operationType"] == "IMPORT"]
            assert running[-1]["status"] == "RUNNING", running[-1]  # killed while Cloud SQL imported
            release()
            doc = await system.wait_for_restore(restore_id, timeout=120)
        assert supervisor.restarted == [CRASH.service]
    finally:
        release()
        if not points.crashed(CRASH):
            points.marker(CRASH).touch()
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    await _restored_equal(bed, restore_id, doc, bucket, "dl/")
