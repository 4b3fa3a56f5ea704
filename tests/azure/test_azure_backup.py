"""Whole backups on the azure provider: the five services as real processes, the real Azure SDKs against Azurite
(behind a counting proxy), a managed-identity endpoint and the local Resource Manager server.

What is checked is what a user relies on, counted where it happens (in the stand-ins' own state and in Azurite):
the backup ends Succeeded (or Failed with Azure's reason), the server holds one on-demand backup and one
long-term-retention backup per backup, the dump Azure wrote restores into an empty database with the source's
rows, every document is copied once with its MD5 and no generated file is, and no token or SAS shows anywhere.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from lc2backup.devstack import LocalStack
from lc2backup.devstack.postgres import pg_bindir
from lc2backup.devstack.seeding import plan_document_library
from lc2backup.providers.azure import backup_name
from tests.aws.support import request_backup
from tests.azure.support import (
    ACCOUNT,
    AzureFakes,
    FlexibleServer,
    azure_spec,
    blob_client,
    listing,
    read_blob,
    seed_blobs,
)
from tests.metadata_json import read_metadata_json
from tests.polling import eventually
from tests.support import System, row_counts

pytestmark = [pytest.mark.azure, pytest.mark.e2e]


def _restore(stack: LocalStack, dump: bytes, tmp_path: Path, database: str) -> None:
    """pg_restore the archive into an empty database, stopping at the first error."""
    stack.postgres.create_database(database)
    path = tmp_path / "ltr.dump"
    path.write_bytes(dump)
    restore = [str(pg_bindir() / "pg_restore"), "--exit-on-error", "--no-owner", "-d", stack.postgres.dsn_for(database)]
    done = subprocess.run([*restore, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


async def _ends(system: System, spec: dict[str, Any], state: str) -> tuple[str, dict[str, Any]]:
    """Request ``spec`` and wait until the backup ends in ``state``; its id and its projection document."""
    backup_id = await request_backup(system, spec)
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == state, json.dumps(doc, indent=1)
    return backup_id, doc


async def test_backup_takes_both_backups_and_copies_the_library_through_azure(
    system: System,
    stack: LocalStack,
    fakes: AzureFakes,
    server: FlexibleServer,
    containers: tuple[str, str],
    tmp_path: Path,
) -> None:
    source, destination = containers
    async with blob_client(fakes) as client:
        layout = await seed_blobs(client, source, "dl/", plan_document_library(60))
        backup_id, _ = await _ends(system, azure_spec(server, source, destination), "Succeeded")
        name = backup_name(backup_id)

        # Resource Manager: one on-demand backup and one long-term-retention backup, each under our name.
        arm = fakes.arm.state()
        ours = [o for o in arm["operations"] if o["backupName"] == name]
        assert sorted(o["kind"] for o in ours) == ["backup", "ltr"]
        assert all(o["status"] == "Succeeded" for o in ours)
        assert (arm["counts"]["backups_created"], arm["counts"]["ltr_starts"]) == (1, 1)

        # The SAS Azure got is one container's, create/write only, short-lived (checked by the stand-in too).
        (sas,) = arm["sas"]
        assert f"/{ACCOUNT}/{destination}?" in sas and "sp=cw" in sas and "sr=c" in sas

        # The archive Azure streamed into the container restores into an empty database with the same rows.
        dump = await read_blob(client, destination, f"{name}/{server.database}.dump")
        restored = f"restored_{backup_id[-8:].lower()}"
        _restore(stack, dump, tmp_path, restored)
        assert row_counts(stack, restored) == row_counts(stack, server.database)

        # Blob copy: every document with its MD5, each written once at the server, nothing generated.
        src = await listing(client, source, "dl/")
        copied = await listing(client, destination, f"backups/{backup_id}/documentlibrary/")
        assert copied == {k: src[k] for k in layout.regular}
        proxy = fakes.proxy.state()
        prefix = f"{ACCOUNT}/{destination}/backups/{backup_id}/documentlibrary/"
        started = {k: n for k, n in proxy["copies_started"].items() if k.startswith(prefix)}
        assert sorted(started.values()) == [1] * len(layout.regular)

        events = await system.events(backup_id)
        by_type = {e["type"]: e["data"] for e in events}
        counters = by_type["DocumentLibraryTransferCompleted"]["counters"]
        assert counters["objectsCopied"] == len(layout.regular)
        assert counters["bytesCopied"] == sum(size for size, _ in copied.values())
        assert (counters["objectsExcluded"], counters["bytesExcluded"]) == (
            len(layout.generated),
            sum(layout.generated.values()),
        )
        completed = by_type["DatabaseExportCompleted"]
        assert completed["format"] == "azure-ltr" and completed["restorable"] is True
        assert completed["location"] == f"https://{ACCOUNT}.blob.core.windows.net/{destination}/{name}/"

        # metadata.json, written once, in the backup's folder.
        raw = await read_blob(client, destination, f"backups/{backup_id}/metadata.json")
        doc = read_metadata_json(raw)
        assert doc["backupId"] == backup_id
        assert proxy["writes"][f"{ACCOUNT}/{destination}/backups/{backup_id}/metadata.json"] == 1


async def test_a_dump_takes_only_the_long_term_retention_backup(
    system: System, fakes: AzureFakes, server: FlexibleServer, containers: tuple[str, str]
) -> None:
    source, destination = containers
    async with blob_client(fakes) as client:
        await seed_blobs(client, source, "dl/", plan_document_library(6))
    spec = azure_spec(server, source, destination)
    spec["database"]["type"] = "dump"
    backup_id, _ = await _ends(system, spec, "Succeeded")
    kinds = [o["kind"] for o in fakes.arm.state()["operations"] if o["backupName"] == backup_name(backup_id)]
    assert kinds == ["ltr"]
    assert "DatabaseSnapshotStarted" not in {e["type"] for e in await system.events(backup_id)}


async def test_throttling_and_busy_storage_are_retried_without_a_second_backup(
    system: System, fakes: AzureFakes, server: FlexibleServer, containers: tuple[str, str]
) -> None:
    """429 from Resource Manager and 503 ServerBusy from Blob Storage, each with Retry-After: waited and retried
    (azure-core, then durably), and still one backup of each kind and one copy of each blob."""
    source, destination = containers
    async with blob_client(fakes) as client:
        layout = await seed_blobs(client, source, "dl/", plan_document_library(6))
    fakes.arm.throttle(6, retry_after=1)
    fakes.proxy.busy(4)
    backup_id, _ = await _ends(system, azure_spec(server, source, destination), "Succeeded")
    arm, proxy = fakes.arm.state(), fakes.proxy.state()
    assert arm["counts"]["throttled"] == 6 and proxy["busy"] == 4  # every injected refusal was met, and retried
    assert (arm["counts"]["backups_created"], arm["counts"]["ltr_starts"]) == (1, 1)
    prefix = f"{ACCOUNT}/{destination}/backups/{backup_id}/documentlibrary/"
    assert sorted(n for k, n in proxy["copies_started"].items() if k.startswith(prefix)) == [1] * len(layout.regular)


async def test_pending_copies_are_polled_until_azure_finishes_them(
    system: System, fakes: AzureFakes, server: FlexibleServer, containers: tuple[str, str]
) -> None:
    source, destination = containers
    async with blob_client(fakes) as client:
        layout = await seed_blobs(client, source, "dl/", plan_document_library(6))
        fakes.proxy.configure(pending_polls=3)
        backup_id, _ = await _ends(system, azure_spec(server, source, destination), "Succeeded")
        copied = await listing(client, destination, f"backups/{backup_id}/documentlibrary/")
        src = await listing(client, source, "dl/")
    proxy = fakes.proxy.state()
    assert proxy["pending_reads"] >= 3 * len(layout.regular)  # each copy was seen pending, three times
    assert copied == {k: src[k] for k in layout.regular}


@pytest.mark.parametrize("system_extra_env", [{"LC2_AZURE__COPY_DEADLINE_SECONDS": "2"}], indirect=True)
async def test_a_copy_pending_past_its_deadline_is_aborted_and_fails_the_branch(
    system: System, fakes: AzureFakes, server: FlexibleServer, containers: tuple[str, str]
) -> None:
    source, destination = containers
    async with blob_client(fakes) as client:
        await seed_blobs(client, source, "dl/", plan_document_library(6))
    fakes.proxy.configure(hold=True)
    _, doc = await _ends(system, azure_spec(server, source, destination), "Failed")
    assert doc["status"]["failedBranch"] == "documentLibrary"
    assert "still pending" in doc["message"] and "LC2_AZURE__COPY_DEADLINE_SECONDS" in doc["message"], doc["message"]
    proxy = fakes.proxy.state()
    assert proxy["aborts"] >= 1 and proxy["aborted"], proxy  # aborted at the server, not merely given up on


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("backup", "InternalServerError", "The on-demand backup could not be taken (test)"),
        ("ltr", "StorageAccessDenied", "The server could not write to the target container (test)"),
    ],
)
async def test_a_failed_azure_operation_fails_the_backup_with_azures_reason(
    system: System,
    fakes: AzureFakes,
    server: FlexibleServer,
    containers: tuple[str, str],
    target: str,
    code: str,
    message: str,
) -> None:
    source, destination = containers
    fakes.arm.fail_next(target, code, message)
    _, doc = await _ends(system, azure_spec(server, source, destination), "Failed")
    assert doc["status"]["failedBranch"] == "database"
    assert code in doc["message"] and message in doc["message"], doc["message"]


async def test_a_wrong_server_or_container_fails_by_name(
    system: System, fakes: AzureFakes, server: FlexibleServer, containers: tuple[str, str]
) -> None:
    source, destination = containers
    wrong_server = FlexibleServer(fakes.server_id("no-such-server"), server.database, "")
    _, doc = await _ends(system, azure_spec(wrong_server, source, destination), "Failed")
    assert "flexible server" in doc["message"] and "no-such-server" in doc["message"], doc["message"]
    _, doc = await _ends(system, azure_spec(server, "no-such-container", destination), "Failed")
    assert "source container no-such-container does not exist in storage account" in doc["message"], doc["message"]


async def test_metadata_json_is_written_once_and_azure_refuses_a_second_create(
    system: System, fakes: AzureFakes, server: FlexibleServer, containers: tuple[str, str]
) -> None:
    """Positive control of the create-only write: the same IfMissing upload again is refused by the server."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError

    source, destination = containers
    backup_id, _ = await _ends(system, azure_spec(server, source, destination), "Succeeded")
    key = f"backups/{backup_id}/metadata.json"
    async with blob_client(fakes) as client:
        before = await read_blob(client, destination, key)
        with pytest.raises(ResourceExistsError):
            await client.get_blob_client(destination, key).upload_blob(b"{}", match_condition=MatchConditions.IfMissing)
        assert await read_blob(client, destination, key) == before
    assert read_metadata_json(before)["backupId"] == backup_id


async def _event(system: System, backup_id: str, kind: str) -> dict[str, Any]:
    found = [e["data"] for e in await system.events(backup_id) if e["type"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} events"
    return found[0]


def _no_sas_in(token: str, fakes: AzureFakes) -> None:
    """The continuation token (base64 JSON: the request's method and URL, the answer's status, headers and body)
    holds none of the SAS signatures Resource Manager received (the SAS travels in the request body only)."""
    state = json.loads(base64.b64decode(token))["data"]
    assert state["request"]["url"]
    text = json.dumps(state) + base64.b64decode(state["response"]["content"]).decode()
    signatures = [urllib.parse.parse_qs(urllib.parse.urlsplit(sas).query)["sig"][0] for sas in fakes.arm.state()["sas"]]
    assert signatures
    for signature in signatures:
        assert signature not in text and urllib.parse.quote(signature, safe="") not in text


async def _mysql_server(fakes: AzureFakes, unique: str) -> FlexibleServer:
    """A MySQL flexible server of the stand-in: nothing behind it, so its export writes the stand-in's note."""
    return FlexibleServer(fakes.add_mysql_server(f"shop-{unique}"), "shop", "")


async def test_a_mysql_server_takes_a_v2_backup_and_a_backup_and_export_into_the_container(
    system: System, fakes: AzureFakes, containers: tuple[str, str], unique: str
) -> None:
    """MySQL: one ``backupsV2`` on-demand backup and one validated backup-and-export under our name, the SAS
    create/write only; what Azure wrote lands under the backup's name (here the stand-in's note: there is no MySQL
    server to export, so a MySQL restore is not proven here)."""
    source, destination = containers
    server = await _mysql_server(fakes, unique)
    backup_id, _ = await _ends(system, azure_spec(server, source, destination), "Succeeded")
    name = backup_name(backup_id)
    arm = fakes.arm.state()
    ours = sorted((o["kind"], o["status"], o["requests"]) for o in arm["operations"] if o["backupName"] == name)
    assert ours == [("backup", "Succeeded", 1), ("ltr", "Succeeded", 1)]
    counts = arm["counts"]
    assert (counts["backups_created"], counts["export_validations"], counts["exports_started"]) == (1, 1, 1)
    assert (counts["ltr_starts"], counts["ltr_prechecks"]) == (0, 0)  # no PostgreSQL call for a MySQL server
    (sas,) = arm["sas"]
    assert f"/{ACCOUNT}/{destination}?" in sas and "sp=cw" in sas and "sr=c" in sas
    async with blob_client(fakes) as client:
        written = await listing(client, destination, f"{name}/")
    assert list(written) == ["STAND-IN-NO-MYSQL.txt"]
    by_type = {e["type"]: e["data"] for e in await system.events(backup_id)}
    assert by_type["DatabaseSnapshotCompleted"]["location"].endswith(
        f"/Microsoft.DBforMySQL/flexibleServers/shop-{unique}/backupsV2/{name}"
    )
    assert by_type["DatabaseSnapshotCompleted"]["engine"] == "mysql"
    completed = by_type["DatabaseExportCompleted"]
    assert completed["format"] == "azure-mysql-export" and completed["restorable"] is True
    assert completed["location"] == f"https://{ACCOUNT}.blob.core.windows.net/{destination}/{name}/"
    assert completed["sizeBytes"] == written["STAND-IN-NO-MYSQL.txt"][0]


async def test_a_mysql_export_is_followed_from_its_recorded_operation_by_a_restarted_db_export(
    system: System, fakes: AzureFakes, containers: tuple[str, str], unique: str
) -> None:
    """backup-and-export has no lookup by name: a db-export started after the export was recorded follows it from
    the continuation token in the event (nothing sent again: one request, one export)."""
    assert system.services is not None
    source, destination = containers
    server = await _mysql_server(fakes, unique)
    spec = azure_spec(server, source, destination)
    spec["database"]["type"] = "dump"
    fakes.arm.hold(True)
    try:
        backup_id = await request_backup(system, spec)
        started = await eventually(
            lambda: _event(system, backup_id, "DatabaseExportStarted"), timeout=60, what="the export recorded"
        )
        assert started["operation"], started  # the poll handle is recorded...
        _no_sas_in(started["operation"], fakes)
        system.services["db-export"].kill()
        system.services.restart("db-export")
    finally:
        fakes.arm.hold(False)
    doc = await system.wait_for(backup_id, timeout=120)
    assert doc["state"] == "Succeeded", json.dumps(doc, indent=1)
    (export,) = [o for o in fakes.arm.state()["operations"] if o["backupName"] == backup_name(backup_id)]
    assert (export["kind"], export["status"], export["requests"]) == ("ltr", "Succeeded", 1)
    assert fakes.arm.state()["counts"]["exports_started"] == 1
    assert "operation" not in doc["status"]["database"]["export"]  # ...but not shown: it is not for display
