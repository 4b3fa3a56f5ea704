"""The Resource Manager stand-in driven by the real management clients (PostgreSQL flexible server 3.0.0, MySQL
flexible server 1.0.0, aio): on-demand backups, long-term-retention backups that write real pg_dump archives into
Azurite, MySQL backupsV2 and backupAndExport, SAS checks, throttling, authentication and injected failures."""

from __future__ import annotations

import io
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.mysqlflexibleservers import models as mysql_models
from azure.mgmt.mysqlflexibleservers.aio import MySQLManagementClient
from azure.mgmt.postgresqlflexibleservers import models as pg_models
from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from azure.storage.blob.aio import BlobServiceClient

from lc2backup.devstack import LocalStack
from lc2backup.devstack.azurite import ACCOUNT, ACCOUNT_KEY, AzuriteServer
from lc2backup.devstack.postgres import pg_bindir
from lc2backup.devstack.seeding import liferay_database_sql
from lc2backup.testing.azure.arm import FakeResourceManager
from lc2backup.testing.azure.certs import TlsFiles, make_tls
from lc2backup.testing.azure.tokens import MANAGEMENT, STORAGE, mint_token

pytestmark = pytest.mark.azure

SUB = "00000000-0000-4000-8000-000000000001"
RG = "rg-backup"


class MintedCredential:
    """An async token credential whose tokens the fake (management) and Azurite (storage) accept."""

    def __init__(self, audience: str | None = None) -> None:
        self.audience = audience  # force a wrong audience for the negative tests
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **_kw: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(*mint_token(self.audience or scopes[0]))

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> MintedCredential:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[AzuriteServer]:
    server = AzuriteServer(tmp_path_factory.mktemp("azurite"), cert=tls.cert, key=tls.key)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def arm_server(
    tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles, azurite: AzuriteServer
) -> Iterator[FakeResourceManager]:
    server = FakeResourceManager(tmp_path_factory.mktemp("arm"), tls=tls, blob_account_url=azurite.account_url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake(arm_server: FakeResourceManager) -> Iterator[FakeResourceManager]:
    arm_server.reset()
    arm_server.configure(0.2)
    yield arm_server
    arm_server.reset()


@pytest.fixture
def server_name(unique: str) -> str:
    return f"srv-{unique}"


@pytest.fixture
def mysql_server(fake: FakeResourceManager, unique: str) -> str:
    name = f"my-{unique}"
    fake.add_server(SUB, RG, name, engine="mysql")
    return name


@pytest.fixture
def pg_server(fake: FakeResourceManager, server_name: str) -> str:
    """A registered server whose database is not needed (on-demand backups copy nothing)."""
    fake.add_server(SUB, RG, server_name, dsn="postgresql://127.0.0.1:1/unused")
    return server_name


@pytest.fixture
def liferay_server(fake: FakeResourceManager, stack: LocalStack, unique: str) -> tuple[str, str]:
    """(server, database): a registered server backed by a real PostgreSQL database with Liferay's tables."""
    database = f"lportal_{unique}"
    dsn = stack.postgres.create_database(database)
    stack.postgres.psql(liferay_database_sql(), database=database)
    name = f"liferay-{unique}"
    fake.add_server(SUB, RG, name, dsn=dsn)
    return name, database


@pytest.fixture
async def pg(fake: FakeResourceManager, tls: TlsFiles) -> AsyncIterator[PostgreSQLManagementClient]:
    client = PostgreSQLManagementClient(
        MintedCredential(), SUB, base_url=fake.endpoint, connection_verify=str(tls.ca), polling_interval=0
    )
    async with client:
        yield client


@pytest.fixture
async def mysql(fake: FakeResourceManager, tls: TlsFiles) -> AsyncIterator[MySQLManagementClient]:
    client = MySQLManagementClient(
        MintedCredential(), SUB, base_url=fake.endpoint, connection_verify=str(tls.ca), polling_interval=0
    )
    async with client:
        yield client


@pytest.fixture
async def blobs(azurite: AzuriteServer, tls: TlsFiles) -> AsyncIterator[BlobServiceClient]:
    client = BlobServiceClient(azurite.account_url, credential=MintedCredential(), connection_verify=str(tls.ca))
    async with client:
        yield client


@pytest.fixture
async def container(blobs: BlobServiceClient, unique: str) -> str:
    name = f"ltr-{unique}"
    await blobs.create_container(name)
    return name


def container_sas(azurite: AzuriteServer, container: str, hours: float = 1.0, **permission: bool) -> str:
    grants = permission or {"create": True, "write": True}
    token = generate_container_sas(
        account_name=ACCOUNT,
        container_name=container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(**grants),
        expiry=datetime.now(UTC) + timedelta(hours=hours),
    )
    return f"{azurite.account_url}/{container}?{token}"


def ltr_request(name: str, sas: str) -> pg_models.BackupsLongTermRetentionRequest:
    return pg_models.BackupsLongTermRetentionRequest(
        backup_settings=pg_models.BackupSettings(backup_name=name),
        target_details=pg_models.BackupStoreDetails(sas_uri_list=[sas]),
    )


def raw_request(fake: FakeResourceManager, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(fake.tls.ca))
    request = urllib.request.Request(f"{fake.endpoint}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- PostgreSQL on-demand backups ---------------------------------------------------------------------------


async def test_on_demand_backup_completes_and_is_idempotent_by_name(
    fake: FakeResourceManager, pg: PostgreSQLManagementClient, pg_server: str
) -> None:
    ops = pg.backups_automatic_and_on_demand
    with pytest.raises(HttpResponseError) as before:
        await ops.get(RG, pg_server, "nightly-1")
    assert before.value.status_code == 404

    backup = await (await ops.begin_create(RG, pg_server, "nightly-1")).result()
    assert backup.name == "nightly-1"
    assert backup.properties is not None and backup.properties.backup_type == "Customer On-Demand"
    assert backup.properties.completed_time is not None
    assert backup.id is not None and backup.id.endswith(f"/flexibleServers/{pg_server}/backups/nightly-1")

    again = await (await ops.begin_create(RG, pg_server, "nightly-1")).result()
    assert again.name == "nightly-1"
    counts = fake.state()["counts"]
    assert (counts["backups_created"], counts["put_requests"]) == (1, 2)
    # what the crash matrix reads: a second start of a name is counted on its operation
    assert [o["requests"] for o in fake.state()["operations"] if o["backupName"] == "nightly-1"] == [2]

    await (await ops.begin_create(RG, pg_server, "nightly-2")).result()  # positive control
    counts = fake.state()["counts"]
    assert (counts["backups_created"], counts["put_requests"]) == (2, 3)
    assert fake.state()["apiVersions"].get("2026-10-01", 0) > 0


async def test_held_backup_stays_in_progress_until_released(
    fake: FakeResourceManager, pg: PostgreSQLManagementClient, pg_server: str
) -> None:
    fake.hold(True)
    poller = await pg.backups_automatic_and_on_demand.begin_create(RG, pg_server, "held")
    time.sleep(0.5)
    [operation] = fake.state()["operations"]
    assert operation["status"] == "InProgress"
    assert not poller.done()
    fake.hold(False)
    assert (await poller.result()).name == "held"


async def test_unknown_server_is_resource_not_found(pg: PostgreSQLManagementClient) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await pg.backups_automatic_and_on_demand.begin_create(RG, "no-such-server", "b")
    assert refused.value.status_code == 404
    assert refused.value.error is not None and refused.value.error.code == "ResourceNotFound"
    assert "no-such-server" in str(refused.value)


async def test_injected_failure_surfaces_as_http_response_error(
    fake: FakeResourceManager, pg: PostgreSQLManagementClient, pg_server: str
) -> None:
    fake.fail_next("backup", "InternalServerError", "the backup disk is on fire")
    poller = await pg.backups_automatic_and_on_demand.begin_create(RG, pg_server, "doomed")
    with pytest.raises(HttpResponseError) as failed:
        await poller.result()
    assert "the backup disk is on fire" in str(failed.value)
    [operation] = fake.state()["operations"]
    assert operation["status"] == "Failed" and operation["error"]["code"] == "InternalServerError"


# --- PostgreSQL long-term retention into Azurite ------------------------------------------------------------


async def test_ltr_backup_writes_a_restorable_dump_once(
    fake: FakeResourceManager,
    pg: PostgreSQLManagementClient,
    liferay_server: tuple[str, str],
    azurite: AzuriteServer,
    blobs: BlobServiceClient,
    container: str,
    tmp_path: Path,
) -> None:
    server, database = liferay_server
    ltr = pg.backups_long_term_retention
    pre = await ltr.check_prerequisites(
        RG, server, pg_models.LtrPreBackupRequest(backup_settings=pg_models.BackupSettings(backup_name="ltr-1"))
    )
    assert pre.properties.number_of_containers == 1

    sas = container_sas(azurite, container)
    result = await (await ltr.begin_start(RG, server, ltr_request("ltr-1", sas))).result()
    assert result.properties is not None
    assert result.properties.status == "Succeeded" and result.properties.percent_complete == 100
    assert result.properties.backup_name == "ltr-1"

    operation = await ltr.get(RG, server, "ltr-1")
    assert operation.properties is not None and operation.properties.status == "Succeeded"
    assert operation.properties.end_time is not None
    assert operation.properties.data_transferred_in_bytes and operation.properties.data_transferred_in_bytes > 0

    blob_name = f"ltr-1/{database}.dump"
    names = [b.name async for b in blobs.get_container_client(container).list_blobs()]
    assert names == [blob_name]
    data = await (await blobs.get_blob_client(container, blob_name).download_blob()).readall()
    dump = tmp_path / "ltr.dump"
    dump.write_bytes(data)
    listing = subprocess.run(
        [str(pg_bindir() / "pg_restore"), "--list", str(dump)], capture_output=True, text=True, check=True
    )
    assert "TABLE" in listing.stdout

    await (await ltr.begin_start(RG, server, ltr_request("ltr-1", sas))).result()  # a retried start
    state = fake.state()
    assert (state["counts"]["ltr_starts"], state["counts"]["ltr_start_requests"]) == (1, 2)
    assert [o["requests"] for o in state["operations"] if o["backupName"] == "ltr-1" and o["kind"] == "ltr"] == [2]
    assert state["counts"]["blobs_written"] == 1
    assert state["sas"] == [sas, sas]


async def test_ltr_progress_is_visible_while_running(
    fake: FakeResourceManager,
    pg: PostgreSQLManagementClient,
    liferay_server: tuple[str, str],
    azurite: AzuriteServer,
    container: str,
) -> None:
    server, _ = liferay_server
    fake.configure(0.4)
    fake.hold(True)
    poller = await pg.backups_long_term_retention.begin_start(
        RG, server, ltr_request("slow", container_sas(azurite, container))
    )
    seen = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and 50 not in seen:
        props = (await pg.backups_long_term_retention.get(RG, server, "slow")).properties
        assert props is not None and props.status == "Running"
        seen.add(props.percent_complete)
    assert seen >= {50}
    fake.hold(False)
    result = await poller.result()
    assert result.properties is not None and result.properties.percent_complete == 100


@pytest.mark.parametrize(
    ("grants", "named"),
    [
        ({"read": True, "write": True}, "read"),
        ({"list": True, "write": True}, "list"),
        ({"delete": True, "write": True}, "delete"),
    ],
)
async def test_a_too_broad_sas_is_refused_by_name(
    fake: FakeResourceManager,
    pg: PostgreSQLManagementClient,
    pg_server: str,
    azurite: AzuriteServer,
    container: str,
    grants: dict[str, bool],
    named: str,
) -> None:
    sas = container_sas(azurite, container, **grants)
    with pytest.raises(HttpResponseError) as refused:
        await pg.backups_long_term_retention.begin_start(RG, pg_server, ltr_request("broad", sas))
    assert refused.value.status_code == 400
    assert named in str(refused.value)
    state = fake.state()
    assert state["counts"]["ltr_starts"] == 0 and state["operations"] == []
    assert state["sas"] == [sas]


async def test_a_long_lived_or_foreign_sas_is_refused(
    pg: PostgreSQLManagementClient, pg_server: str, azurite: AzuriteServer, container: str
) -> None:
    long_lived = container_sas(azurite, container, hours=48)
    foreign = container_sas(azurite, container).replace("127.0.0.1", "localhost")
    for sas, words in ((long_lived, "24 hours"), (foreign, "storage account")):
        with pytest.raises(HttpResponseError) as refused:
            await pg.backups_long_term_retention.begin_start(RG, pg_server, ltr_request("x", sas))
        assert refused.value.status_code == 400 and words in str(refused.value)


async def test_an_existing_blob_fails_the_ltr_operation(
    fake: FakeResourceManager,
    pg: PostgreSQLManagementClient,
    liferay_server: tuple[str, str],
    azurite: AzuriteServer,
    blobs: BlobServiceClient,
    container: str,
) -> None:
    server, database = liferay_server
    await blobs.get_blob_client(container, f"dup/{database}.dump").upload_blob(b"already here")
    poller = await pg.backups_long_term_retention.begin_start(
        RG, server, ltr_request("dup", container_sas(azurite, container))
    )
    with pytest.raises(HttpResponseError) as failed:
        await poller.result()
    assert "already exists" in str(failed.value)
    props = (await pg.backups_long_term_retention.get(RG, server, "dup")).properties
    assert props is not None and props.status == "Failed" and props.error_code == "BlobAlreadyExists"


# --- throttling and authentication ----------------------------------------------------------------------------


async def test_429_is_retried_after_retry_after(
    fake: FakeResourceManager, pg: PostgreSQLManagementClient, pg_server: str
) -> None:
    fake.throttle(1, retry_after=1)
    started = time.monotonic()
    pre = await pg.backups_long_term_retention.check_prerequisites(
        RG, pg_server, pg_models.LtrPreBackupRequest(backup_settings=pg_models.BackupSettings(backup_name="t"))
    )
    assert pre.properties.number_of_containers == 1
    assert time.monotonic() - started >= 1.0
    assert fake.state()["counts"]["throttled"] == 1


def test_missing_token_is_401(fake: FakeResourceManager, pg_server: str) -> None:
    path = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{pg_server}"
        "/backups/x?api-version=2026-10-01"
    )
    status, body = raw_request(fake, path, {})
    assert status == 401 and body["error"]["code"] == "InvalidAuthenticationToken"
    token, _ = mint_token(MANAGEMENT)
    status, body = raw_request(fake, path.split("?")[0], {"Authorization": f"Bearer {token}"})
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    status, body = raw_request(
        fake, f"/subscriptions/{SUB}/nothing?api-version=1", {"Authorization": f"Bearer {token}"}
    )
    assert status == 404 and body["error"]["code"] == "NotFound"
    assert fake.state()["counts"]["unauthenticated"] == 1


async def test_a_storage_token_is_refused_by_the_sdk(fake: FakeResourceManager, tls: TlsFiles, pg_server: str) -> None:
    client = PostgreSQLManagementClient(
        MintedCredential(audience=STORAGE), SUB, base_url=fake.endpoint, connection_verify=str(tls.ca)
    )
    async with client:
        with pytest.raises(ClientAuthenticationError) as refused:
            await client.backups_automatic_and_on_demand.get(RG, pg_server, "x")
    assert refused.value.status_code == 401 and "audience" in str(refused.value)


# --- MySQL ----------------------------------------------------------------------------------------------------


async def test_mysql_backup_v2_and_backup_and_export(
    fake: FakeResourceManager,
    mysql: MySQLManagementClient,
    mysql_server: str,
    azurite: AzuriteServer,
    blobs: BlobServiceClient,
    container: str,
) -> None:
    body = mysql_models.ServerBackupV2(backup_name_v2="m-1")
    backup = await (await mysql.long_running_backup.begin_create(RG, mysql_server, "m-1", body)).result()
    assert backup.name == "m-1" and backup.provisioning_state == "Succeeded"
    await (await mysql.long_running_backup.begin_create(RG, mysql_server, "m-1", body)).result()
    got = await mysql.long_running_backups.get(RG, mysql_server, "m-1")
    assert got.backup_name_v2 == "m-1" and got.completed_time is not None
    counts = fake.state()["counts"]
    assert (counts["backups_created"], counts["put_requests"]) == (1, 2)

    request = mysql_models.BackupAndExportRequest(
        backup_settings=mysql_models.BackupSettings(backup_name="exp-1", backup_format="CollatedFormat"),
        target_details=mysql_models.FullBackupStoreDetails(sas_uri_list=[container_sas(azurite, container)]),
    )
    exported = await (await mysql.backup_and_export.begin_create(RG, mysql_server, request)).result()
    assert exported.status == "Succeeded" and exported.percent_complete == 100
    names = [b.name async for b in blobs.get_container_client(container).list_blobs()]
    assert names == ["exp-1/STAND-IN-NO-MYSQL.txt"]

    operation = next(op for op in fake.state()["operations"] if op["kind"] == "ltr")
    result = await mysql.operation_results.get("eastus", operation["name"])
    assert result.status == "Succeeded"
    assert fake.state()["counts"]["exports_started"] == 1


async def test_unknown_mysql_server_is_resource_not_found(mysql: MySQLManagementClient) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await mysql.long_running_backups.get(RG, f"nope-{uuid.uuid4().hex[:6]}", "m")
    assert refused.value.status_code == 404 and "nope-" in str(refused.value)


# --- servers: point-in-time restore into a new server, delete --------------------------------------------------


def pitr(source_id: str, when: datetime, **tags: str) -> pg_models.Server:
    """A point-in-time restore as the PostgreSQL SDK models it."""
    properties = pg_models.ServerProperties(
        create_mode="PointInTimeRestore", source_server_resource_id=source_id, point_in_time_utc=when
    )
    return pg_models.Server(location="eastus", tags=tags, properties=properties)


def raw(source_id: str, when: str, **properties: Any) -> IO[bytes]:
    """The same request as bytes on the wire, with values the models would not let through."""
    body = {"createMode": "PointInTimeRestore", "sourceServerResourceId": source_id, "pointInTimeUTC": when}
    return io.BytesIO(json.dumps({"location": "eastus", "properties": {**body, **properties}}).encode())


def server_id(name: str, namespace: str = "Microsoft.DBforPostgreSQL") -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{namespace}/flexibleServers/{name}"


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_point_in_time_restore_makes_a_real_copy_counted_per_server_and_deletes_it(
    fake: FakeResourceManager, pg: PostgreSQLManagementClient, liferay_server: tuple[str, str], stack: LocalStack
) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    server, database = liferay_server
    backup = await (await pg.backups_automatic_and_on_demand.begin_create(RG, server, "pitr-1")).result()
    assert backup.properties is not None and backup.properties.completed_time is not None
    when = backup.properties.completed_time
    target = f"{server}-r1"
    fake.throttle(1, retry_after=0)  # the create is retried by azure-core and still counted once
    poller = await pg.servers.begin_create_or_update(RG, target, pitr(server_id(server), when, owner="t"))
    restored = await poller.result()
    assert restored.properties is not None and restored.properties.state == "Ready"
    assert restored.tags == {"owner": "t"}
    assert restored.properties.source_server_resource_id == server_id(server)

    held = fake.server(server_id(target))
    assert held is not None and held["restoredFrom"]["sourceServerResourceId"] == server_id(server)
    assert instant(held["restoredFrom"]["pointInTime"]) == when
    copy = held["databaseCopies"][database]
    for table in ("company", "user_", "dlfileentry"):
        count = f"SELECT count(*) FROM {table}"
        assert stack.postgres.psql(count, database=copy) == stack.postgres.psql(count, database=database)
    assert fake.create_requests(server_id(target)) == 1 and fake.state()["counts"]["throttled"] == 1

    # positive control: a second create of the name is counted (and refused: nothing is created twice)
    with pytest.raises(ResourceExistsError) as again:
        await pg.servers.begin_create_or_update(RG, target, pitr(server_id(server), when))
    assert again.value.error is not None and again.value.error.code == "ServerAlreadyExists"
    assert fake.create_requests(server_id(target)) == 2 and fake.state()["counts"]["servers_created"] == 1

    await (await pg.servers.begin_delete(RG, target)).result()
    with pytest.raises(ResourceNotFoundError):
        await pg.servers.get(RG, target)
    assert stack.postgres.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{copy}'").strip() == "0"
    assert fake.state()["counts"]["servers_deleted"] == 1
    await (await pg.servers.begin_delete(RG, target)).result()  # a second delete: nothing there (204)


async def test_a_held_restore_shows_a_provisioning_server_until_released(
    fake: FakeResourceManager, pg: PostgreSQLManagementClient, liferay_server: tuple[str, str]
) -> None:
    fake.hold(True)
    body = pitr(server_id(liferay_server[0]), datetime.now(UTC))
    poller = await pg.servers.begin_create_or_update(RG, "held-r1", body)
    [operation] = [o for o in fake.state()["operations"] if o["kind"] == "restore"]
    assert operation["status"] == "InProgress" and operation["resourceId"] == server_id("held-r1")
    got = await pg.servers.get(RG, "held-r1")
    assert got.properties is not None and got.properties.state == "Provisioning"
    fake.hold(False)
    done = await poller.result()
    assert done.properties is not None and done.properties.state == "Ready"


async def test_restore_refusals_and_a_failed_restore_leave_no_server(
    fake: FakeResourceManager, pg: PostgreSQLManagementClient, pg_server: str
) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    now = datetime.now(UTC)
    source = server_id(pg_server)
    refused = [
        (raw(source, now.isoformat(), createMode="Default"), 400, "PointInTimeRestore"),
        (raw(server_id("no-such-server"), now.isoformat()), 404, "no-such-server"),
        (raw(source, (now + timedelta(hours=1)).isoformat()), 400, "future"),
        (raw(source, "yesterday"), 400, "pointInTimeUTC"),
    ]
    for body, status, words in refused:
        with pytest.raises(HttpResponseError) as error:
            await pg.servers.begin_create_or_update(RG, "refused-r1", body)
        assert error.value.status_code == status and words in str(error.value), str(error.value)
    assert fake.create_requests(server_id("refused-r1")) == len(refused)
    assert fake.state()["counts"]["servers_created"] == 0

    fake.fail_next("restore", "PointInTimeRestoreFailed", "the backup could not be restored (test)")
    poller = await pg.servers.begin_create_or_update(RG, "failed-r1", pitr(source, now))
    with pytest.raises(HttpResponseError) as failed:
        await poller.result()
    assert "the backup could not be restored (test)" in str(failed.value)
    with pytest.raises(ResourceNotFoundError):
        await pg.servers.get(RG, "failed-r1")


async def test_mysql_point_in_time_restore_is_recorded(
    fake: FakeResourceManager, mysql: MySQLManagementClient, mysql_server: str
) -> None:
    source = server_id(mysql_server, "Microsoft.DBforMySQL")
    when = datetime.now(UTC)
    body = mysql_models.Server(
        location="eastus",
        tags={"owner": "t"},
        create_mode="PointInTimeRestore",
        source_server_resource_id=source,
        restore_point_in_time=when,
    )
    restored = await (await mysql.servers.begin_create(RG, f"{mysql_server}-r1", body)).result()
    assert restored.state == "Ready" and restored.tags == {"owner": "t"}
    held = fake.server(server_id(f"{mysql_server}-r1", "Microsoft.DBforMySQL"))
    assert held is not None and held["restoredFrom"]["sourceServerResourceId"] == source
    assert instant(held["restoredFrom"]["pointInTime"]) == when
    assert held["databaseCopies"] == {}  # no MySQL behind the fake: nothing to copy
    assert fake.create_requests(server_id(f"{mysql_server}-r1", "Microsoft.DBforMySQL")) == 1
