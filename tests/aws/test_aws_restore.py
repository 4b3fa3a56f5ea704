"""Restores and verifications of AWS backups: the six services as real processes, moto behind the fake stage.

One system and one snapshot-backed backup per module. The oracles read moto with their own client (instances,
their tags and engine, objects by size and MD5 of their bytes) and the requests that reached "AWS" at the stage
(which snapshot each RDS restore call named), never the restorer's events. A few cases call the provider
in-process (an Aurora cluster snapshot, a failed status, throttling), through the same stage.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aioboto3
import pytest

from lc2backup.devstack import LocalStack, MotoServer, NatsServer
from lc2backup.devstack.seeding import DocumentLibraryLayout, plan_document_library, seed_document_library
from lc2backup.domain.restoring import DatabasePlan, RestorePlan
from lc2backup.providers import PermanentProviderError, TransientProviderError
from lc2backup.providers.aws import AwsRestorer, AwsSettings, open_restore_provider, snapshot_identifier
from tests.aws.stage import Stage
from tests.aws.support import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    aws_env,
    aws_spec,
    create_instance,
    request_backup,
    wait_until,
)
from tests.restore.helpers import objects_under
from tests.support import ALL_SERVICES, System

pytestmark = [pytest.mark.aws, pytest.mark.restore, pytest.mark.e2e]

RESTORE_TAG = "lc2-restore-id"  # the tag the restore call sets (docs/aws.md), read back from moto here


@dataclass
class Bed:
    system: System
    stage: Stage
    backup_id: str
    instance: str
    source: str
    destination: str
    layout: DocumentLibraryLayout
    unique: str

    @property
    def snapshot(self) -> str:
        return snapshot_identifier(self.backup_id, "instance")


def _client(service: str, endpoint: str) -> Any:
    session: Any = aioboto3.Session()
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


async def _backup(system: System, moto: MotoServer, unique: str) -> tuple[str, str, str, str, DocumentLibraryLayout]:
    source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
    async with _client("rds", moto.endpoint) as rds, _client("s3", moto.endpoint) as s3:
        instance = await create_instance(rds, f"liferay-{unique}")
        for bucket in (source, destination):
            await s3.create_bucket(Bucket=bucket)
        layout = await seed_document_library(s3, source, "dl/", plan_document_library(30))
    backup_id = await request_backup(system, aws_spec(instance, source, destination))
    doc = await system.wait_for(backup_id, timeout=90)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    return backup_id, instance, source, destination, layout


@pytest.fixture(scope="module")
def bed(stack: LocalStack, moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    unique = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("aws-restore")
    stage = Stage(moto.endpoint).start()
    nats_server = NatsServer(root / "nats")
    nats_server.start()
    env = {**aws_env(stage.url), "LC2_AWS__RESTORE_POLL_INTERVAL_SECONDS": "0.2", "LC2_POLL_INTERVAL_SECONDS": "0.5"}
    system = System.local(stack, nats_server, root / "logs", unique, env, names=ALL_SERVICES)
    system.start()
    try:
        backup_id, instance, source, destination, layout = asyncio.run(_backup(system, moto, unique))
        yield Bed(system, stage, backup_id, instance, source, destination, layout, unique)
    finally:
        system.stop()
        nats_server.stop()
        stage.close()


async def _instances(rds: Any) -> list[dict[str, Any]]:
    return list((await rds.describe_db_instances())["DBInstances"])


def _tag(item: dict[str, Any], key: str) -> str | None:
    return next((t["Value"] for t in item.get("TagList", []) if t["Key"] == key), None)


async def _of_restore(rds: Any, restore_id: str) -> list[str]:
    """The identifiers of the instances at moto tagged with ``restore_id``."""
    return sorted(i["DBInstanceIdentifier"] for i in await _instances(rds) if _tag(i, RESTORE_TAG) == restore_id)


def _restore_calls(stage: Stage, operation: str, **params: str) -> list[dict[str, str]]:
    """The ``operation`` requests that reached the stage with these parameters (RDS's wire names)."""
    return [c for c in stage.calls(operation) if all(c.get(k) == v for k, v in params.items())]


async def _restore_events(system: System, restore_id: str) -> list[str]:
    async with system.client() as client:
        resp = await client.get(f"/api/v1/restores/{restore_id}/events")
        resp.raise_for_status()
        return [e["type"] for e in resp.json()["items"]]


async def test_restore_into_another_environment_is_one_instance_from_the_snapshot_and_every_object(
    bed: Bed, rds: Any, aws_s3: Any
) -> None:
    system, stage = bed.system, bed.stage
    target_bucket = f"qa-dl-{bed.unique}"
    await aws_s3.create_bucket(Bucket=target_bucket)
    spec = {
        "backupId": bed.backup_id,
        "target": {"projectId": "retail", "environment": "qa"},
        "documentLibrary": {"bucket": target_bucket, "prefix": "dl/"},
    }
    restore_id = await system.restore(spec, idempotency_key=f"qa-{bed.unique}")
    doc = await system.wait_for_restore(restore_id)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    target = doc["status"]["plan"]["database"]["targetInstance"]
    assert target == f"{bed.instance}-r{restore_id.replace('-', '')[:8]}"

    # RDS: exactly one instance with the identifier, this restore's, restored from the backup's snapshot
    (restored,) = [i for i in await _instances(rds) if i["DBInstanceIdentifier"] == target]
    assert await _of_restore(rds, restore_id) == [target]
    assert restored["DBInstanceStatus"] == "available"
    (call,) = _restore_calls(stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=target)
    assert call["DBSnapshotIdentifier"] == bed.snapshot
    (snapshot,) = (await rds.describe_db_snapshots(DBSnapshotIdentifier=bed.snapshot))["DBSnapshots"]
    for field in ("Engine", "EngineVersion", "MasterUsername", "AllocatedStorage"):
        assert restored[field] == snapshot[field], field
    assert restored["DBName"] == "lportal"  # the snapshot's database, not a new empty instance's

    # S3: every regular object back with its size and MD5; the generated files the backup left out absent
    restored_objects = await objects_under(aws_s3, target_bucket, "dl/")
    originals = await objects_under(aws_s3, bed.source, "dl/")
    assert set(restored_objects) == set(bed.layout.regular)
    assert all(restored_objects[key] == originals[key] for key in bed.layout.regular)

    # the same request again (same Idempotency-Key, so the same restore id): the same restore, one instance
    assert await system.restore(spec, idempotency_key=f"qa-{bed.unique}") == restore_id
    await asyncio.sleep(1.0)  # time for a second restore to start, were there one
    assert [i["DBInstanceIdentifier"] for i in await _instances(rds)].count(target) == 1
    assert len(_restore_calls(stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=target)) == 1
    types = await _restore_events(system, restore_id)
    assert types.count("RestoreRequested") == 1 and types.count("RestoreSucceeded") == 1


async def test_a_target_instance_that_is_not_ours_is_rejected_naming_it(bed: Bed, rds: Any) -> None:
    taken = await create_instance(rds, f"taken-{bed.unique}")
    restore_id = await bed.system.restore(
        {
            "backupId": bed.backup_id,
            "include": "database",
            "target": {"projectId": "retail", "environment": "uat"},
            "database": {"instanceId": taken},
        }
    )
    doc = await bed.system.wait_for_restore(restore_id)
    assert doc["state"] == "Rejected", json.dumps(doc, indent=1)
    assert f"RDS instance '{taken}' already exists" in doc["message"] and RESTORE_TAG in doc["message"]
    assert _restore_calls(bed.stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=taken) == []
    assert await _of_restore(rds, restore_id) == []


@pytest.mark.timeout(120)
async def test_a_sigkill_while_the_instance_is_creating_leaves_one_instance(bed: Bed, rds: Any) -> None:
    system, stage = bed.system, bed.stage
    assert system.services is not None
    target = f"stg-{bed.unique}"
    stage.set_fields("DescribeDBInstances", {"DBInstanceStatus": "creating"})  # moto makes it available at once
    try:
        restore_id = await system.restore(
            {
                "backupId": bed.backup_id,
                "include": "database",
                "target": {"projectId": "retail", "environment": "stg"},
                "database": {"instanceId": target},
            }
        )
        polls = 0

        async def creating() -> bool:
            nonlocal polls
            started = _restore_calls(stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=target)
            if started and not polls:
                polls = stage.count("DescribeDBInstances")
            return bool(started) and stage.count("DescribeDBInstances") >= polls + 2

        await wait_until("the restored instance is polled while creating", creating, system)
        system.services["restorer"].kill()
        after_kill = stage.count("DescribeDBInstances")
        doc = await system.wait_for_restore(restore_id, states={"Restoring"})
        system.services.restart("restorer")

        async def polled_again() -> bool:
            return stage.count("DescribeDBInstances") > after_kill

        await wait_until("the restarted restorer polls the instance again", polled_again, system)
        doc = await system.wait_for_restore(restore_id, states={"Restoring"})
    finally:
        stage.set_fields("DescribeDBInstances", None)
    doc = await system.wait_for_restore(restore_id)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    # one restore call, one instance, counted where they happen
    assert len(_restore_calls(stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=target)) == 1
    assert await _of_restore(rds, restore_id) == [target]

    # positive control: a second restore call of this restore (another identifier, same tag) is seen by both counts
    control = f"{target}-control"
    async with _client("rds", stage.url) as staged:
        await staged.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=control,
            DBSnapshotIdentifier=bed.snapshot,
            Tags=[{"Key": RESTORE_TAG, "Value": restore_id}],
        )
    try:
        tagged = [c for c in stage.calls("RestoreDBInstanceFromDBSnapshot") if restore_id in c.values()]
        assert len(tagged) == 2
        assert await _of_restore(rds, restore_id) == sorted([target, control])
    finally:
        await rds.delete_db_instance(DBInstanceIdentifier=control, SkipFinalSnapshot=True)


async def test_verification_passes_and_removes_the_scratch_instance(bed: Bed, rds: Any, aws_s3: Any) -> None:
    system = bed.system
    async with system.client() as client:
        resp = await client.post(f"/api/v1/backups/{bed.backup_id}/verify")
        assert resp.status_code == 202, resp.text
        restore_id = resp.json()["restoreId"]
    doc = await system.wait_for_restore(restore_id)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    verdict = doc["status"]["verification"]
    assert verdict["passed"] is True and verdict["findings"] == []
    assert verdict["summary"]["objects"] == len(bed.layout.regular)
    checks = " | ".join(verdict["checks"])
    assert f"restored from snapshot {bed.snapshot}" in checks and "contents not compared" in checks

    # the scratch instance was restored once from the snapshot, then deleted without a final snapshot
    scratch = doc["status"]["plan"]["database"]["targetInstance"]
    (call,) = _restore_calls(bed.stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=scratch)
    assert call["DBSnapshotIdentifier"] == bed.snapshot
    (deleted,) = _restore_calls(bed.stage, "DeleteDBInstance", DBInstanceIdentifier=scratch)
    assert (deleted["SkipFinalSnapshot"], deleted["DeleteAutomatedBackups"]) == ("true", "true")
    assert scratch not in [i["DBInstanceIdentifier"] for i in await _instances(rds)]
    # the scratch objects are gone; the verdict sits next to the backup
    assert await objects_under(aws_s3, bed.destination, "backups/lc2-verify/") == {}
    folder = f"backups/{bed.backup_id}/"
    listed = await aws_s3.list_objects_v2(Bucket=bed.destination, Prefix=f"{folder}verifications/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [f"{folder}verifications/{restore_id}.json"]


# -- the provider in-process, through the same stage ----------------------------------------------------


@pytest.fixture
async def restorer(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AwsRestorer]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = AwsSettings(
        region=REGION,
        rds_endpoint_url=bed.stage.url,
        s3_endpoint_url=bed.stage.url,
        max_attempts=2,
        transient_retry_seconds=0.5,
        restore_poll_interval_seconds=0.05,
    )
    async with open_restore_provider(settings) as opened:
        yield opened


def _plan(artefact: str, source: str, target: str) -> DatabasePlan:
    return DatabasePlan(
        kind="snapshot",
        artefact=artefact,
        format="snapshot",
        source_instance=source,
        source_database="lportal",
        target_instance=target,
        target_database="lportal",
    )


async def _no_progress(done: int, done_bytes: int) -> None:
    return None


async def test_an_aurora_cluster_snapshot_restores_into_a_cluster_with_one_instance(
    bed: Bed, restorer: AwsRestorer, rds: Any
) -> None:
    cluster = f"aurora-{bed.unique}"
    await rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-postgresql",
        MasterUsername="liferay",
        MasterUserPassword="not-used-by-the-backup",
    )
    snapshot = snapshot_identifier(str(uuid.uuid4()), "cluster")
    made = await rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot, DBClusterIdentifier=cluster)
    plan = _plan(made["DBClusterSnapshot"]["DBClusterSnapshotArn"], cluster, f"{cluster}-r1")
    restore_id = str(uuid.uuid4())
    for _ in range(2):  # the second call adopts what the first made
        assert await restorer.restore_database(restore_id, plan, _no_progress) == 0
    started = _restore_calls(bed.stage, "RestoreDBClusterFromSnapshot", DBClusterIdentifier=plan.target_instance)
    assert [c["SnapshotIdentifier"] for c in started] == [snapshot]
    assert len(_restore_calls(bed.stage, "CreateDBInstance", DBClusterIdentifier=plan.target_instance)) == 1
    (restored,) = (await rds.describe_db_clusters(DBClusterIdentifier=plan.target_instance))["DBClusters"]
    assert _tag(restored, RESTORE_TAG) == restore_id
    assert [m["DBInstanceIdentifier"] for m in restored["DBClusterMembers"]] == [f"{plan.target_instance}-1"]

    with pytest.raises(PermanentProviderError, match=f"Aurora cluster '{plan.target_instance}' already exists"):
        await restorer.restore_database(str(uuid.uuid4()), plan, _no_progress)
    problems, _ = await restorer.validate(str(uuid.uuid4()), _whole(bed, plan))
    assert any(f"Aurora cluster '{plan.target_instance}' already exists" in p for p in problems), problems

    verdict = await restorer.verify(restore_id, _whole(bed, plan).model_copy(update={"document_library": None}))
    assert verdict.findings == [], verdict.findings
    removed = await restorer.remove_scratch(restore_id, _whole(bed, plan).model_copy(update={"document_library": None}))
    assert removed == [f"RDS instance '{plan.target_instance}-1'", f"Aurora cluster '{plan.target_instance}'"]
    clusters = (await rds.describe_db_clusters())["DBClusters"]
    assert plan.target_instance not in [c["DBClusterIdentifier"] for c in clusters]


def _whole(bed: Bed, database: DatabasePlan) -> RestorePlan:
    return RestorePlan(
        backup_id=bed.backup_id,
        provider="aws",
        project_id="retail",
        environment="prd",
        target_project_id="retail",
        target_environment="prd",
        database=database,
    )


async def test_a_failed_status_fails_with_rds_reason_and_throttling_is_retried(
    bed: Bed, restorer: AwsRestorer, rds: Any
) -> None:
    stage = bed.stage
    snapshot_arn = f"arn:aws:rds:{REGION}:123456789012:snapshot:{bed.snapshot}"
    failing = _plan(snapshot_arn, bed.instance, f"fail-{bed.unique}")
    stage.set_fields("DescribeDBInstances", {"DBInstanceStatus": "incompatible-restore"})
    try:
        with pytest.raises(PermanentProviderError) as failed:
            await restorer.restore_database(str(uuid.uuid4()), failing, _no_progress)
    finally:
        stage.set_fields("DescribeDBInstances", None)
    assert f"RDS instance '{failing.target_instance}' is incompatible-restore: DB instance created" in str(failed.value)

    # more throttles than botocore's attempts: the call is given back as transient (the restorer retries it
    # later); the next call starts the restore once; throttled polls are waited out
    plan = _plan(snapshot_arn, bed.instance, f"thr-{bed.unique}")
    restore_id = str(uuid.uuid4())
    stage.fail("RestoreDBInstanceFromDBSnapshot", times=3, code="Throttling")  # max_attempts 2: 3 attempts
    with pytest.raises(TransientProviderError):
        await restorer.restore_database(restore_id, plan, _no_progress)
    throttled_calls = len(
        _restore_calls(stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=plan.target_instance)
    )
    stage.set_fields("DescribeDBInstances", {"DBInstanceStatus": "creating"})
    running = asyncio.create_task(restorer.restore_database(restore_id, plan, _no_progress))
    try:

        async def started() -> bool:
            calls = _restore_calls(stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=plan.target_instance)
            return len(calls) > throttled_calls

        await wait_until("the restore call", started, bed.system)
        injected = stage.injected["DescribeDBInstances"]
        stage.fail("DescribeDBInstances", times=3, code="Throttling")

        async def throttled() -> bool:
            return stage.injected["DescribeDBInstances"] == injected + 3

        await wait_until("three throttled polls", throttled, bed.system)
    finally:
        stage.set_fields("DescribeDBInstances", None)
    assert await asyncio.wait_for(running, timeout=30) == 0
    calls = _restore_calls(stage, "RestoreDBInstanceFromDBSnapshot", DBInstanceIdentifier=plan.target_instance)
    assert len(calls) == 4  # three throttled attempts of the first call, one of the second
    assert await _of_restore(rds, restore_id) == [plan.target_instance]
    for item in (failing, plan):
        await rds.delete_db_instance(DBInstanceIdentifier=item.target_instance, SkipFinalSnapshot=True)
