"""The fake Cloud SQL Admin API, driven by the real discovery client with real google-auth credentials.

Credentials come from ``google.auth.default()`` through the ADC file ``write_adc_file`` writes, so every
request carries a token the fake's own ``/token`` endpoint issued. Exports are real: pg_dump of a database on
the session's PostgreSQL, uploaded to a real fake-gcs-server, then loaded back with psql.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth
import httplib2
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2.credentials import Credentials as UserCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from lc2backup.devstack import FakeGcsServer, LocalStack
from lc2backup.devstack.errors import StackError
from lc2backup.devstack.postgres import pg_bindir
from lc2backup.testing.gcp.sqladmin import FakeSqlAdmin
from lc2backup.testing.gcp.stack import GcpFakes
from lc2backup.testing.gcp.tokens import CLIENT_ID, CLIENT_SECRET, write_adc_file
from tests.polling import eventually

pytestmark = [pytest.mark.gcp]

PROJECT = "lc2-proj"
REFRESH_TOKEN = "1//fake-refresh-token"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
TABLES = {"accounts": 7, "orders": 23, "notes": 0}


@pytest.fixture(scope="module")
def gcs(gcp: GcpFakes) -> FakeGcsServer:
    """The session's fake-gcs-server (tests.gcp.fixtures); each test uses buckets of its own."""
    return gcp.gcs


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory, gcs: FakeGcsServer) -> Iterator[FakeSqlAdmin]:
    server = FakeSqlAdmin(tmp_path_factory.mktemp("sqladmin"), gcs.endpoint, REFRESH_TOKEN)
    server.pending_seconds, server.running_seconds = 0.1, 0.3
    server.start()
    yield server
    server.stop()


@pytest.fixture
def instance(fake: FakeSqlAdmin, stack: LocalStack, unique: str) -> str:
    fake.reset()
    name = f"pg-{unique}"
    fake.add_instance(PROJECT, name, stack.postgres.dsn_for("postgres"))
    return name


@pytest.fixture
def sqladmin(fake: FakeSqlAdmin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    adc = write_adc_file(tmp_path / "adc.json", fake.token_uri, REFRESH_TOKEN)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    credentials, _ = google.auth.default(scopes=SCOPES)
    client = discovery.build(
        "sqladmin",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": fake.endpoint},
    )
    yield client
    client.close()


@pytest.fixture
def bucket(gcs: FakeGcsServer, unique: str) -> storage.Bucket:
    client = storage.Client(
        project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs.endpoint}
    )
    return client.create_bucket(f"exports-{unique}")


@pytest.fixture
def source_db(stack: LocalStack, unique: str) -> str:
    name = f"src_{unique}"
    stack.postgres.create_database(name)
    for table, rows in TABLES.items():
        stack.postgres.psql(
            f"CREATE TABLE {table} (id int PRIMARY KEY, body text);"
            f"INSERT INTO {table} SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;",
            database=name,
        )
    return name


def _operation(sqladmin: Any, name: str) -> dict[str, Any]:
    result: dict[str, Any] = sqladmin.operations().get(project=PROJECT, operation=name).execute()
    return result


async def _done(sqladmin: Any, name: str, timeout: float = 15) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        operation = _operation(sqladmin, name)
        assert operation["status"] == "DONE", operation["status"]
        return operation

    return await eventually(probe, timeout=timeout, interval=0.05, what=f"operation {name} DONE")


def _export(sqladmin: Any, instance: str, uri: str, databases: list[str]) -> dict[str, Any]:
    body = {"exportContext": {"kind": "sql#exportContext", "fileType": "SQL", "uri": uri, "databases": databases}}
    result: dict[str, Any] = sqladmin.instances().export(project=PROJECT, instance=instance, body=body).execute()
    return result


def _import(sqladmin: Any, instance: str, uri: str, database: str) -> dict[str, Any]:
    body = {"importContext": {"kind": "sql#importContext", "fileType": "SQL", "uri": uri, "database": database}}
    result: dict[str, Any] = sqladmin.instances().import_(project=PROJECT, instance=instance, body=body).execute()
    return result


def _create_database(sqladmin: Any, instance: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = (
        sqladmin.databases().insert(project=PROJECT, instance=instance, body={"name": name}).execute()
    )
    return result


def _on_server(stack: LocalStack, name: str) -> bool:
    """Read at the PostgreSQL server itself, not through the fake."""
    return stack.postgres.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'").strip() == "1"


def _row_counts(stack: LocalStack, database: str) -> dict[str, int]:
    return {table: int(stack.postgres.psql(f"SELECT count(*) FROM {table}", database=database)) for table in TABLES}


def _reason(exc: HttpError) -> str:
    details: list[dict[str, str]] = exc.error_details
    return details[0]["reason"]


async def test_backup_run_progresses_to_successful(sqladmin: Any, fake: FakeSqlAdmin, instance: str) -> None:
    operation = (
        sqladmin.backupRuns().insert(project=PROJECT, instance=instance, body={"description": "run-1"}).execute()
    )
    assert operation["kind"] == "sql#operation"
    assert operation["operationType"] == "BACKUP_VOLUME"
    assert operation["status"] == "PENDING"
    assert (operation["targetId"], operation["targetProject"]) == (instance, PROJECT)
    backup_id = operation["backupContext"]["backupId"]
    assert int(backup_id) > 0

    listed = sqladmin.backupRuns().list(project=PROJECT, instance=instance, maxResults=10).execute()
    assert [(r["id"], r["description"], r["status"]) for r in listed["items"]] == [(backup_id, "run-1", "ENQUEUED")]

    done = await _done(sqladmin, operation["name"])
    assert "error" not in done
    run = sqladmin.backupRuns().get(project=PROJECT, instance=instance, id=backup_id).execute()
    assert run["status"] == "SUCCESSFUL"
    assert (run["type"], run["backupKind"], run["kind"]) == ("ON_DEMAND", "SNAPSHOT", "sql#backupRun")
    assert run["enqueuedTime"] <= run["startTime"] <= run["endTime"]
    state = fake.state()
    assert state["counts"]["backupRuns.insert"] == 1
    token = sqladmin._http.credentials.token
    assert token in state["issuedTokens"]
    info = urllib.parse.urlencode({"access_token": token}).encode()
    with urllib.request.urlopen(fake.tokeninfo_uri, data=info, timeout=5) as resp:
        assert json.loads(resp.read())["scope"] == SCOPES[0]


async def test_backup_runs_list_is_newest_first_and_paged(sqladmin: Any, instance: str) -> None:
    ids = []
    for n in range(3):
        operation = sqladmin.backupRuns().insert(project=PROJECT, instance=instance, body={"description": f"r{n}"})
        name = operation.execute()["name"]
        ids.append((await _done(sqladmin, name))["backupContext"]["backupId"])
    first = sqladmin.backupRuns().list(project=PROJECT, instance=instance, maxResults=2).execute()
    rest = (
        sqladmin.backupRuns()
        .list(project=PROJECT, instance=instance, maxResults=2, pageToken=first["nextPageToken"])
        .execute()
    )
    assert [r["id"] for r in first["items"] + rest["items"]] == ids[::-1]
    assert "nextPageToken" not in rest


async def test_export_of_a_real_database_loads_back(
    sqladmin: Any,
    fake: FakeSqlAdmin,
    instance: str,
    bucket: storage.Bucket,
    source_db: str,
    stack: LocalStack,
    tmp_path: Path,
    unique: str,
) -> None:
    uri = f"gs://{bucket.name}/dumps/{source_db}.sql.gz"
    operation = _export(sqladmin, instance, uri, [source_db])
    assert (operation["operationType"], operation["status"]) == ("EXPORT", "PENDING")
    assert operation["exportContext"]["uri"] == uri

    done = await _done(sqladmin, operation["name"])
    assert "error" not in done, done["error"]
    dump = gzip.decompress(bucket.blob(f"dumps/{source_db}.sql.gz").download_as_bytes())
    assert b"CREATE TABLE public.accounts" in dump
    assert b"OWNER TO" not in dump and b"GRANT " not in dump

    target = f"dst_{unique}"
    stack.postgres.create_database(target)
    (tmp_path / "dump.sql").write_bytes(dump)
    psql = [str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", stack.postgres.dsn_for(target)]
    subprocess.run([*psql, "-f", str(tmp_path / "dump.sql")], check=True, capture_output=True)
    assert _row_counts(stack, target) == _row_counts(stack, source_db) == TABLES
    assert fake.state()["counts"]["exportsWritten"] == 1

    again = await _done(sqladmin, _export(sqladmin, instance, uri, [source_db])["name"])
    assert again["error"]["kind"] == "sql#operationErrors"
    assert "already exists" in again["error"]["errors"][0]["message"]
    assert fake.state()["counts"] == {
        "backupRuns.insert": 0,
        "instances.export": 2,
        "instances.import": 0,
        "databases.insert": 0,
        "databases.delete": 0,
        "conflicts": 0,
        "unauthenticated": 0,
        "exportsWritten": 1,
        "imports": {},
    }


async def test_operations_list_finds_the_export_by_its_uri(
    sqladmin: Any, instance: str, bucket: storage.Bucket, source_db: str
) -> None:
    backup = sqladmin.backupRuns().insert(project=PROJECT, instance=instance, body={"description": "b"}).execute()
    await _done(sqladmin, backup["name"])
    uri = f"gs://{bucket.name}/plain.sql"
    export = _export(sqladmin, instance, uri, [source_db])
    listed = sqladmin.operations().list(project=PROJECT, instance=instance, maxResults=10).execute()
    assert [op["name"] for op in listed["items"]] == [export["name"], backup["name"]]
    found = [op for op in listed["items"] if op.get("exportContext", {}).get("uri") == uri]
    assert [op["name"] for op in found] == [export["name"]]
    assert listed["items"][1]["backupContext"]["backupId"] == backup["backupContext"]["backupId"]
    await _done(sqladmin, export["name"])
    assert bucket.blob("plain.sql").download_as_bytes().startswith(b"--")
    other = sqladmin.operations().list(project=PROJECT, instance="someone-else").execute()
    assert other.get("items", []) == []


async def test_a_second_operation_while_one_runs_gets_409(
    sqladmin: Any, fake: FakeSqlAdmin, instance: str, bucket: storage.Bucket, source_db: str
) -> None:
    fake.hold(True)  # the first operation stays RUNNING however slow this machine is
    first = sqladmin.backupRuns().insert(project=PROJECT, instance=instance, body={"description": "a"}).execute()
    with pytest.raises(HttpError) as refused:
        _export(sqladmin, instance, f"gs://{bucket.name}/x.sql.gz", [source_db])
    assert refused.value.resp.status == 409
    assert _reason(refused.value) == "operationInProgress"
    with pytest.raises(HttpError) as again:
        sqladmin.backupRuns().insert(project=PROJECT, instance=instance, body={"description": "b"}).execute()
    assert again.value.resp.status == 409

    fake.hold(False)
    await _done(sqladmin, first["name"])
    state = fake.state()
    assert state["counts"]["conflicts"] == 2
    assert [r["description"] for r in state["backupRuns"]] == ["a"]
    assert len(state["operations"]) == 1
    second = _export(sqladmin, instance, f"gs://{bucket.name}/x.sql.gz", [source_db])
    assert "error" not in await _done(sqladmin, second["name"])


async def test_injected_conflicts_and_export_error(
    sqladmin: Any, fake: FakeSqlAdmin, instance: str, bucket: storage.Bucket, source_db: str
) -> None:
    fake.inject_conflicts(2)
    for _ in range(2):
        with pytest.raises(HttpError) as refused:
            sqladmin.backupRuns().insert(project=PROJECT, instance=instance, body={}).execute()
        assert refused.value.resp.status == 409
    fake.inject_export_error("disk on fire")
    failed = await _done(sqladmin, _export(sqladmin, instance, f"gs://{bucket.name}/y.sql", [source_db])["name"])
    assert failed["error"]["errors"][0]["message"] == "disk on fire"
    assert list(bucket.list_blobs()) == []
    counts = fake.state()["counts"]
    assert (counts["conflicts"], counts["instances.export"], counts["exportsWritten"]) == (2, 1, 0)


async def test_hold_keeps_an_operation_running_until_released(
    sqladmin: Any, fake: FakeSqlAdmin, instance: str, bucket: storage.Bucket, source_db: str
) -> None:
    fake.hold(True)
    operation = _export(sqladmin, instance, f"gs://{bucket.name}/held.sql.gz", [source_db])

    def written() -> bool:
        assert fake.state()["counts"]["exportsWritten"] == 1
        return True

    await eventually(written, timeout=15, what="the held export's upload")
    assert _operation(sqladmin, operation["name"])["status"] == "RUNNING"
    fake.hold(False)
    assert "error" not in await _done(sqladmin, operation["name"])


async def test_export_failures_end_done_with_an_error(
    sqladmin: Any, fake: FakeSqlAdmin, instance: str, bucket: storage.Bucket, stack: LocalStack, unique: str
) -> None:
    no_bucket = await _done(sqladmin, _export(sqladmin, instance, f"gs://missing-{unique}/a.sql", ["postgres"])["name"])
    assert "missing" in no_bucket["error"]["errors"][0]["message"]
    no_db = await _done(sqladmin, _export(sqladmin, instance, f"gs://{bucket.name}/a.sql", [f"nope_{unique}"])["name"])
    assert no_db["error"]["errors"][0]["code"] == "ERROR_RDBMS"
    assert list(bucket.list_blobs()) == []

    fake.add_instance(PROJECT, f"my-{unique}", stack.postgres.dsn_for("postgres"), database_version="MYSQL_8_0")
    body = {
        "exportContext": {
            "fileType": "SQL",
            "uri": f"gs://{bucket.name}/my.sql.gz",
            "databases": ["a", "b"],
            "offload": True,
            "sqlExportOptions": {"mysqlExportOptions": {"masterData": 0}},
        }
    }
    mysql = sqladmin.instances().export(project=PROJECT, instance=f"my-{unique}", body=body).execute()
    assert mysql["exportContext"]["offload"] is True
    assert "MySQL" in (await _done(sqladmin, mysql["name"]))["error"]["errors"][0]["message"]


async def test_databases_are_created_read_and_deleted_on_the_real_server(
    sqladmin: Any, fake: FakeSqlAdmin, instance: str, stack: LocalStack, unique: str
) -> None:
    name = f"made_{unique}"
    with pytest.raises(HttpError) as missing:
        sqladmin.databases().get(project=PROJECT, instance=instance, database=name).execute()
    assert missing.value.resp.status == 404

    created = _create_database(sqladmin, instance, name)
    assert (created["operationType"], created["status"]) == ("CREATE_DATABASE", "PENDING")
    assert "error" not in await _done(sqladmin, created["name"])
    assert _on_server(stack, name)
    got = sqladmin.databases().get(project=PROJECT, instance=instance, database=name).execute()
    assert (got["kind"], got["name"], got["instance"]) == ("sql#database", name, instance)
    listed = sqladmin.databases().list(project=PROJECT, instance=instance).execute()
    assert name in [d["name"] for d in listed["items"]]
    with pytest.raises(HttpError) as exists:
        _create_database(sqladmin, instance, name)
    assert exists.value.resp.status == 400 and "already exists" in str(exists.value)

    deleted = sqladmin.databases().delete(project=PROJECT, instance=instance, database=name).execute()
    assert deleted["operationType"] == "DELETE_DATABASE"
    assert "error" not in await _done(sqladmin, deleted["name"])
    assert not _on_server(stack, name)
    with pytest.raises(HttpError) as gone:
        sqladmin.databases().delete(project=PROJECT, instance=instance, database=name).execute()
    assert gone.value.resp.status == 404
    counts = fake.state()["counts"]
    assert (counts["databases.insert"], counts["databases.delete"]) == (1, 1)


async def test_an_import_loads_the_sql_export_into_a_database_and_each_is_counted(
    sqladmin: Any,
    fake: FakeSqlAdmin,
    instance: str,
    bucket: storage.Bucket,
    source_db: str,
    stack: LocalStack,
    unique: str,
) -> None:
    uri = f"gs://{bucket.name}/dumps/{source_db}.sql.gz"
    assert "error" not in await _done(sqladmin, _export(sqladmin, instance, uri, [source_db])["name"])
    target = f"imp_{unique}"
    assert "error" not in await _done(sqladmin, _create_database(sqladmin, instance, target)["name"])

    operation = _import(sqladmin, instance, uri, target)
    assert (operation["operationType"], operation["status"]) == ("IMPORT", "PENDING")
    assert (operation["importContext"]["uri"], operation["importContext"]["database"]) == (uri, target)
    listed = sqladmin.operations().list(project=PROJECT, instance=instance).execute()["items"]
    assert [op["name"] for op in listed if op.get("importContext", {}).get("uri") == uri] == [operation["name"]]
    assert "error" not in await _done(sqladmin, operation["name"])
    assert _row_counts(stack, target) == _row_counts(stack, source_db) == TABLES
    assert fake.state()["counts"]["imports"] == {f"{instance}/{target}": 1}

    # a second import into the same database is counted, and stops at its first failing statement
    again = await _done(sqladmin, _import(sqladmin, instance, uri, target)["name"])
    assert again["error"]["errors"][0]["code"] == "ERROR_RDBMS"
    assert "already exists" in again["error"]["errors"][0]["message"]
    counts = fake.state()["counts"]
    assert (counts["imports"], counts["instances.import"]) == ({f"{instance}/{target}": 2}, 2)
    assert _row_counts(stack, target) == TABLES


async def test_import_failures_end_done_with_an_error_and_bad_requests_are_400(
    sqladmin: Any, instance: str, bucket: storage.Bucket, source_db: str, unique: str
) -> None:
    no_file = await _done(sqladmin, _import(sqladmin, instance, f"gs://{bucket.name}/none.sql.gz", source_db)["name"])
    assert "does not exist" in no_file["error"]["errors"][0]["message"]
    uri = f"gs://{bucket.name}/plain.sql"
    await _done(sqladmin, _export(sqladmin, instance, uri, [source_db])["name"])
    no_db = await _done(sqladmin, _import(sqladmin, instance, uri, f"nope_{unique}")["name"])
    assert no_db["error"]["errors"][0]["code"] == "ERROR_RDBMS"
    assert f"nope_{unique}" in no_db["error"]["errors"][0]["message"]
    for bad_uri, database in ((uri, ""), ("s3://b/x.sql", source_db)):
        with pytest.raises(HttpError) as refused:
            _import(sqladmin, instance, bad_uri, database)
        assert refused.value.resp.status == 400 and _reason(refused.value) == "invalid"


async def test_a_hold_of_imports_keeps_only_imports_running_and_the_instance_busy(
    sqladmin: Any,
    fake: FakeSqlAdmin,
    instance: str,
    bucket: storage.Bucket,
    source_db: str,
    stack: LocalStack,
    unique: str,
) -> None:
    uri = f"gs://{bucket.name}/held.sql.gz"
    fake.hold(True, types=["IMPORT"])
    try:
        assert "error" not in await _done(sqladmin, _export(sqladmin, instance, uri, [source_db])["name"])
        target = f"held_{unique}"
        assert "error" not in await _done(sqladmin, _create_database(sqladmin, instance, target)["name"])
        operation = _import(sqladmin, instance, uri, target)

        def loaded() -> bool:
            assert _row_counts(stack, target) == TABLES
            return True

        await eventually(loaded, timeout=15, what="the held import's rows", tolerate=(StackError,))
        assert _operation(sqladmin, operation["name"])["status"] == "RUNNING"
        with pytest.raises(HttpError) as busy:
            _create_database(sqladmin, instance, f"other_{unique}")
        assert busy.value.resp.status == 409 and _reason(busy.value) == "operationInProgress"
    finally:
        fake.hold(False)
    assert "error" not in await _done(sqladmin, operation["name"])


def test_invalid_export_requests_are_400(sqladmin: Any, instance: str) -> None:
    for uri, databases in (("gs://b/x.sql", ["a", "b"]), ("gs://b/x.sql", []), ("s3://b/x.sql", ["a"])):
        with pytest.raises(HttpError) as refused:
            _export(sqladmin, instance, uri, databases)
        assert refused.value.resp.status == 400
        assert _reason(refused.value) == "invalid"


def test_unknown_instance_is_404(sqladmin: Any, instance: str) -> None:
    calls = [
        sqladmin.instances().get(project=PROJECT, instance="nope"),
        sqladmin.instances().get(project="other-project", instance=instance),
        sqladmin.backupRuns().insert(project=PROJECT, instance="nope", body={"description": "x"}),
        sqladmin.backupRuns().list(project=PROJECT, instance="nope"),
    ]
    for call in calls:
        with pytest.raises(HttpError) as missing:
            call.execute()
        assert missing.value.resp.status == 404
        assert _reason(missing.value) == "instanceDoesNotExist"
        assert missing.value.reason == "The Cloud SQL instance does not exist."
    found = sqladmin.instances().get(project=PROJECT, instance=instance).execute()
    assert (found["kind"], found["state"], found["databaseVersion"]) == ("sql#instance", "RUNNABLE", "POSTGRES_15")


def test_requests_without_a_valid_token_are_refused(fake: FakeSqlAdmin, instance: str) -> None:
    anonymous = discovery.build(
        "sqladmin",
        "v1",
        http=httplib2.Http(),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": fake.endpoint},
    )
    with anonymous, pytest.raises(HttpError) as refused:
        anonymous.instances().get(project=PROJECT, instance=instance).execute()
    assert refused.value.resp.status == 401

    request = urllib.request.Request(f"{fake.endpoint}/v1/projects/{PROJECT}/instances/{instance}/backupRuns")
    request.add_header("Authorization", "Bearer not-issued-here")
    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(request, data=b"{}", timeout=5)
    assert forged.value.code == 401
    assert json.loads(forged.value.read())["error"]["status"] == "UNAUTHENTICATED"

    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": "stolen"}).encode()
    with pytest.raises(urllib.error.HTTPError) as grant:
        urllib.request.urlopen(fake.token_uri, data=form, timeout=5)
    assert grant.value.code == 400
    assert json.loads(grant.value.read())["error"] == "invalid_grant"

    state = fake.state()
    assert state["counts"]["unauthenticated"] == 2
    assert state["backupRuns"] == []
    assert "not-issued-here" not in state["issuedTokens"]
    forged_info = urllib.parse.urlencode({"access_token": "not-issued-here"}).encode()
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(fake.tokeninfo_uri, data=forged_info, timeout=5)
    assert unknown.value.code == 400


def test_user_credentials_built_in_code_refresh_against_the_fake(fake: FakeSqlAdmin, instance: str) -> None:
    """``google.oauth2.credentials.Credentials(token_uri=...)`` sends the client credentials in the form."""
    credentials = UserCredentials(
        token=None,
        refresh_token=REFRESH_TOKEN,
        token_uri=fake.token_uri,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=SCOPES,
    )
    client = discovery.build(
        "sqladmin",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": fake.endpoint},
    )
    with client:
        assert client.instances().get(project=PROJECT, instance=instance).execute()["name"] == instance


def test_an_authorized_user_file_would_not_reach_the_fake(fake: FakeSqlAdmin) -> None:
    """Why ``write_adc_file`` writes ``external_account_authorized_user``: google-auth drops an
    ``authorized_user`` file's ``token_uri`` for Google's endpoint. If this fails, google-auth changed."""
    info = {
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "token_uri": fake.token_uri,
    }
    assert UserCredentials.from_authorized_user_info(info).token_uri == "https://oauth2.googleapis.com/token"
