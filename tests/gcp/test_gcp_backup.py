"""Whole backups on the gcp provider: the five services as real processes, the real Google clients against
fake-gcs-server and the local Cloud SQL Admin and Storage Transfer servers.

What is checked is what a user relies on, counted where it happens (in the fakes' own state and in GCS): the
backup ends Succeeded (or Failed with the API's reason), Cloud SQL holds one backup run and one export per
backup however often a step is redelivered or Cloud SQL is busy, the SQL dump restores into an empty database
with the source's rows, every document is copied with its MD5 and no generated file is, and no credential
shows anywhere.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import google.auth
import pytest
from google.api_core.exceptions import PreconditionFailed
from googleapiclient import discovery

from lc2backup.devstack import LocalStack
from lc2backup.devstack.postgres import pg_bindir
from lc2backup.devstack.seeding import plan_document_library
from lc2backup.providers.gcp import description_of, transfer_job_name
from tests.aws.support import events_of, request_backup
from tests.gcp.support import (
    PROJECT,
    REFRESH_TOKEN,
    CloudSql,
    GcpFakes,
    gcp_spec,
    gunzip,
    listing,
    ours,
    read_gs,
    seed_gcs,
)
from tests.metadata_json import read_metadata_json
from tests.polling import eventually
from tests.support import System, row_counts

pytestmark = [pytest.mark.gcp, pytest.mark.e2e]


def _restore(stack: LocalStack, sql: str, tmp_path: Path, database: str) -> None:
    """Load the dump into an empty database with psql, stopping at the first error."""
    stack.postgres.create_database(database)
    dump = tmp_path / "dump.sql"
    dump.write_text(sql)
    psql = [str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", stack.postgres.dsn_for(database)]
    done = subprocess.run([*psql, "-f", str(dump)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


async def _small_store(gcs: Any, buckets: tuple[str, str]) -> tuple[str, str]:
    """A six-object store under ``dl/`` in the source bucket; (source, destination)."""
    await seed_gcs(gcs, buckets[0], "dl/", plan_document_library(6))
    return buckets


async def _ends(system: System, spec: dict[str, Any], state: str) -> str:
    """Request ``spec`` and wait until the backup ends in ``state``; its id."""
    backup_id = await request_backup(system, spec)
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == state, json.dumps(doc, indent=1)
    return backup_id


async def test_backup_runs_exports_and_transfers_through_the_managed_apis(
    system: System,
    stack: LocalStack,
    fakes: GcpFakes,
    gcs: Any,
    instance: CloudSql,
    gcs_buckets: tuple[str, str],
    tmp_path: Path,
) -> None:
    source, destination = gcs_buckets
    layout = await seed_gcs(gcs, source, "dl/", plan_document_library(60))
    backup_id = await request_backup(system, gcp_spec(instance, source, destination))
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)

    # Cloud SQL: one backup run carrying our description, one export operation to the backup's URI.
    state = fakes.sqladmin.state()
    runs, exports = ours(state, backup_id, instance.name)
    assert [r["description"] for r in runs] == [description_of(backup_id)]
    assert runs[0]["status"] == "SUCCESSFUL"
    dump_uri = f"gs://{destination}/backups/{backup_id}/database/{instance.database}.sql.gz"
    assert [e["exportContext"]["uri"] for e in exports] == [dump_uri]
    assert exports[0]["exportContext"]["databases"] == [instance.database]

    events = await system.events(backup_id)
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["DatabaseSnapshotStarted"]["snapshotId"] == (
        f"projects/{PROJECT}/instances/{instance.name}/backupRuns/{runs[0]['id']}"
    )
    assert by_type["DatabaseSnapshotCompleted"]["engine"] == "postgres"
    completed = by_type["DatabaseExportCompleted"]
    assert (completed["location"], completed["format"], completed["restorable"]) == (dump_uri, "sql.gz", True)
    assert (completed["engine"], completed["engineVersion"]) == ("postgres", "15")

    # The SQL dump Cloud SQL wrote restores into an empty database with the same rows in every table.
    body = await read_gs(gcs, dump_uri)
    assert completed["sizeBytes"] == len(body)
    restored = f"restored_{backup_id[-8:].lower()}"
    _restore(stack, gunzip(body), tmp_path, restored)
    assert row_counts(stack, restored) == row_counts(stack, instance.database)

    # Storage Transfer: one job under our name, run once; every document copied with its MD5, nothing generated.
    sts = fakes.sts.state()
    job = transfer_job_name(backup_id)
    (stored,) = [j for j in sts["jobs"] if j["name"] == job]
    spec = stored["transferSpec"]
    assert spec["transferOptions"]["overwriteWhen"] == "NEVER"  # nothing already in the sink is written again
    # STS matches exclude prefixes relative to the source path, and takes them literally (no globs)
    assert "20101/0/document_thumbnail/" in spec["objectConditions"]["excludePrefixes"]
    assert len([o for o in sts["operations"] if o["metadata"].get("transferJobName") == job]) == 1
    src = await listing(gcs, source, "dl/")
    copied = await listing(gcs, destination, f"backups/{backup_id}/documentlibrary/")
    assert copied == {k: src[k] for k in layout.regular}
    written = {k: n for k, n in sts["counts"]["writes"].items() if k.startswith(f"{destination}/backups/{backup_id}/")}
    assert sorted(written.values()) == [1] * len(layout.regular)
    counters = by_type["DocumentLibraryTransferCompleted"]["counters"]
    assert counters["objectsCopied"] == len(layout.regular)
    assert counters["bytesCopied"] == sum(size for size, _ in copied.values())
    assert (counters["objectsExcluded"], counters["bytesExcluded"]) == (
        len(layout.generated),
        sum(layout.generated.values()),
    )
    excluded = by_type["DocumentLibraryTransferStarted"]["excludedPrefixes"]
    assert "dl/20101/0/document_thumbnail/" in excluded and not any("*" in p for p in excluded)

    # metadata.json, written once on GCS (a second write is refused by GCS: its generation stays).
    meta_uri = f"gs://{destination}/backups/{backup_id}/metadata.json"
    meta = read_metadata_json(await read_gs(gcs, meta_uri))
    assert (meta["backupId"], meta["provider"]) == (backup_id, "gcp")
    assert meta["database"]["export"]["location"] == dump_uri and meta["database"]["export"]["restorable"] is True
    assert meta["documentLibrary"]["objectsExcluded"] == len(layout.generated)
    assert len(await events_of(system, backup_id, "BackupMetadataWritten")) == 1
    with pytest.raises(PreconditionFailed):  # control: GCS refuses a second create-only write of it
        gcs.bucket(destination).blob(meta_uri.split("/", 3)[3]).upload_from_string(b"{}", if_generation_match=0)

    # No credential anywhere: events, the projection, metadata.json, the services' logs.
    tokens = fakes.sqladmin.state()["issuedTokens"]
    assert tokens, "the services authenticated with tokens from the fake token endpoint"
    shown = json.dumps(events) + json.dumps(doc) + json.dumps(meta) + system.logs()
    for secret in (REFRESH_TOKEN, *tokens):
        assert secret not in shown
    assert state["counts"]["unauthenticated"] == 0


async def test_a_dump_is_the_export_alone(
    system: System, fakes: GcpFakes, gcs: Any, instance: CloudSql, gcs_buckets: tuple[str, str]
) -> None:
    source, destination = await _small_store(gcs, gcs_buckets)
    spec = gcp_spec(instance, source, destination)
    spec["database"]["type"] = "dump"
    backup_id = await _ends(system, spec, "Succeeded")
    runs, exports = ours(fakes.sqladmin.state(), backup_id, instance.name)
    assert (len(runs), len(exports)) == (0, 1)


async def test_cloud_sql_busy_409s_are_retried_and_start_nothing_twice(
    system: System, fakes: GcpFakes, gcs: Any, instance: CloudSql, gcs_buckets: tuple[str, str]
) -> None:
    source, destination = await _small_store(gcs, gcs_buckets)
    before = fakes.sqladmin.state()["counts"]["conflicts"]
    fakes.sqladmin.inject_conflicts(12)  # more than one call's retries: the step is also retried durably
    backup_id = await _ends(system, gcp_spec(instance, source, destination), "Succeeded")
    state = fakes.sqladmin.state()
    assert state["counts"]["conflicts"] - before == 12
    runs, exports = ours(state, backup_id, instance.name)
    assert (len(runs), len(exports)) == (1, 1)


async def test_an_export_done_with_an_error_fails_the_backup_with_the_apis_message(
    system: System, fakes: GcpFakes, gcs: Any, instance: CloudSql, gcs_buckets: tuple[str, str]
) -> None:
    source, destination = await _small_store(gcs, gcs_buckets)
    fakes.sqladmin.inject_export_error("ERROR_RDBMS: pg_dump: error: query failed: out of shared memory")
    backup_id = await _ends(system, gcp_spec(instance, source, destination), "Failed")
    (failed,) = await events_of(system, backup_id, "DatabaseBranchFailed")
    assert "out of shared memory" in failed["reason"] and failed["step"] == "export", failed


@pytest.mark.parametrize("wrong", ["instance", "source bucket"])
async def test_a_wrong_name_fails_with_the_apis_reason(
    system: System, fakes: GcpFakes, gcs: Any, instance: CloudSql, gcs_buckets: tuple[str, str], wrong: str
) -> None:
    source, destination = gcs_buckets
    spec = gcp_spec(instance, source, destination)
    if wrong == "instance":
        spec["database"]["instanceId"] = "no-such-instance"
    else:
        spec["documentLibrary"]["sourceBucket"] = "no-such-bucket-anywhere"
    backup_id = await _ends(system, spec, "Failed")
    if wrong == "instance":
        (failed,) = await events_of(system, backup_id, "DatabaseBranchFailed")
        assert "no-such-instance" in failed["reason"] and "does not exist" in failed["reason"], failed
    else:
        (failed,) = await events_of(system, backup_id, "DocumentLibraryTransferFailed")
        assert "gs://no-such-bucket-anywhere does not exist" in failed["reason"], failed


async def test_the_counts_in_the_fake_would_catch_a_second_backup_run_or_export(
    fakes: GcpFakes, instance: CloudSql, gcs_buckets: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positive control of the 'one backup run, one export' checks here and in the crash matrix: a second run
    with the backup's description and a second export to its URI, made directly through the API, are counted."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fakes.adc))
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    sql = discovery.build(
        "sqladmin",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": fakes.sqladmin.endpoint},
    )
    backup_id, destination = "control-backup", gcs_buckets[1]
    uri = f"gs://{destination}/backups/{backup_id}/database/{instance.database}.sql.gz"
    requests = [
        lambda: sql.backupRuns().insert(
            project=PROJECT, instance=instance.name, body={"description": description_of(backup_id)}
        ),
        lambda: sql.instances().export(
            project=PROJECT,
            instance=instance.name,
            body={"exportContext": {"fileType": "SQL", "uri": uri, "databases": [instance.database]}},
        ),
    ]
    for _ in range(2):
        for request in requests:
            operation = request().execute()

            def done(name: str = operation["name"]) -> bool:
                return sql.operations().get(project=PROJECT, operation=name).execute()["status"] == "DONE"

            await eventually(lambda: asyncio.to_thread(done), timeout=30, what="operation DONE")
    runs, exports = ours(fakes.sqladmin.state(), backup_id, instance.name)
    assert (len(runs), len(exports)) == (2, 2)
    sql.close()


async def test_a_mysql_export_leaves_out_the_ignored_and_system_databases(
    system: System, fakes: GcpFakes, gcs: Any, instance: CloudSql, gcs_buckets: tuple[str, str]
) -> None:
    """The request Cloud SQL receives for MySQL without a databaseName: every user database but
    ``databasesToIgnore`` (and MySQL's own). The stand-in has no MySQL server to dump, so the export ends DONE
    with its error, which fails the branch with that message."""
    source, destination = await _small_store(gcs, gcs_buckets)
    name = f"{instance.name}-my"
    databases = ["lportal", "analytics", "mysql", "information_schema", "performance_schema", "sys"]
    fakes.sqladmin.add_instance(PROJECT, name, instance.dsn, "MYSQL_8_0_31", databases)
    spec = gcp_spec(instance, source, destination)
    spec["database"] = {"type": "dump", "instanceId": name, "databasesToIgnore": ["analytics"]}
    backup_id = await _ends(system, spec, "Failed")
    _, (export,) = ours(fakes.sqladmin.state(), backup_id, name)
    assert export["exportContext"]["databases"] == ["lportal"]
    assert export["exportContext"]["uri"].endswith("/database/all-databases.sql.gz")
    (failed,) = await events_of(system, backup_id, "DatabaseBranchFailed")
    assert "MySQL" in failed["reason"], failed


async def test_a_failed_transfer_operation_fails_the_branch_with_its_error_breakdown(
    system: System, fakes: GcpFakes, gcs: Any, instance: CloudSql, gcs_buckets: tuple[str, str]
) -> None:
    source, destination = await _small_store(gcs, gcs_buckets)
    fakes.sts.inject_failure("service agent lacks storage.objects.create on the sink")
    backup_id = await _ends(system, gcp_spec(instance, source, destination), "Failed")
    (failed,) = await events_of(system, backup_id, "DocumentLibraryTransferFailed")
    assert "FAILED" in failed["reason"] and "PERMISSION_DENIED" in failed["reason"], failed
    assert "lacks storage.objects.create" in failed["reason"], failed
