"""No secret appears in any event, log line, projection row, dead letter or artefact, after backups that used them.

Secrets in play: a PostgreSQL DSN with a password (in the URL and in the query string), the S3 secret key,
every NATS user's password, the operator's and the tenants' API tokens, the gcp provider's Google refresh
token and every access token the fake token endpoint issued to the services, and the azure provider's managed
identity header, every token it issued and the signature of every SAS handed to Resource Manager. The system runs backups that succeed
and fail with those secrets, refuses a poison command and unauthenticated calls (one carrying a password as
its token), at DEBUG level; then every byte it wrote is scanned for the secrets, raw and in obvious encodings.

The local stack's PostgreSQL trusts loopback connections, so the password is carried everywhere a real one
is (settings, ``PGPASSWORD``, asyncpg) but not checked by the server.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seaweed import SECRET_KEY
from lc2backup.devstack.seeding import liferay_database_sql, plan_document_library, seed_document_library
from lc2backup.eventing import Topology
from tests.azure.fixtures import azure
from tests.azure.support import AzureFakes, FlexibleServer, azure_spec, blob_client, seed_blobs
from tests.gcp.fixtures import gcp
from tests.gcp.support import PROJECT, CloudSql, GcpFakes, gcp_spec, seed_gcs
from tests.security.conftest import Tenant, tokens_setting
from tests.support import System

pytestmark = [pytest.mark.e2e, pytest.mark.security]
__all__ = ["azure", "gcp"]  # the session's GCP and Azure stand-ins, as fixtures

PASSWORD = f"pw-{secrets.token_hex(12)}"
QUERY_PASSWORD = f"qpw-{secrets.token_hex(12)}"
ROLE = f"lc2_reader_{secrets.token_hex(4)}"


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        json.dumps(secret)[1:-1],
    }


@pytest.fixture
def system_extra_env(
    stack: LocalStack, unique: str, tenants: dict[str, Tenant], gcp: GcpFakes, azure: AzureFakes
) -> dict[str, str]:
    """The ``system``'s source database (same name, created here first) behind a role with a password."""
    stack.postgres.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
    stack.postgres.psql(f"GRANT pg_read_all_data TO {ROLE}")
    database = stack.postgres.create_database(f"lportal_{unique}").rsplit("/", 1)[-1]
    port = stack.postgres.port
    databases = {
        "secret-db": f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{database}",
        "missing-db": f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/no_such_database",
        "query-password": f"postgresql://nobody_{unique}@127.0.0.1:{port}/{database}?password={QUERY_PASSWORD}",
    }
    return {
        **gcp.env(),  # the gcp provider too: its refresh token and every access token issued are secrets
        **azure.env(),  # and azure: the identity header, every token issued and every SAS handed to Azure
        "LC2_PROVIDERS": json.dumps(["local", "gcp", "azure"]),
        "LC2_LOCAL__DATABASES": json.dumps(databases),
        "LC2_API__TOKENS": tokens_setting(tenants),
        "LC2_LOG_LEVEL": "DEBUG",
    }


async def _stream_messages(nc: NatsClient) -> list[tuple[str, bytes]]:
    """Every message of every stream (events, commands, dead letters, KV lanes): (where, headers + body)."""
    js = nc.jetstream()
    out: list[tuple[str, bytes]] = []
    for name in await js.streams_info():
        state = name.state
        for seq in range(state.first_seq, state.last_seq + 1):
            try:
                msg = await js.get_msg(name.config.name or "", seq)
            except nats.js.errors.NotFoundError:
                continue
            out.append((f"{name.config.name}#{seq}", json.dumps(msg.headers or {}).encode() + (msg.data or b"")))
    return out


async def _projection_rows(dsn: str) -> list[tuple[str, bytes]]:
    conn = await asyncpg.connect(dsn)
    try:
        out = []
        for table in ("backups", "backup_events", "projection_checkpoint"):
            for row in await conn.fetch(f"SELECT row_to_json(t)::text AS doc FROM {table} t"):
                out.append((table, row["doc"].encode()))
        return out
    finally:
        await conn.close()


async def _objects(s3: Any, bucket: str) -> list[tuple[str, bytes]]:
    out = []
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = await s3.get_object(Bucket=bucket, Key=obj["Key"])
            async with body["Body"] as stream:
                out.append((f"s3://{bucket}/{obj['Key']}", await stream.read()))
    return out


async def _gcp_backups(system: System, gcp: GcpFakes, api: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """One gcp backup that succeeds and one that fails (an unknown instance); the GCS destination bucket."""
    instance = CloudSql(f"secret-{uuid.uuid4().hex[:8]}", system.source_dsn.rsplit("/", 1)[-1], system.source_dsn)
    gcp.sqladmin.add_instance(PROJECT, instance.name, instance.dsn)
    gcs = gcp.client()
    source, destination = f"gsrc-{instance.name}", f"gdst-{instance.name}"
    for bucket in (source, destination):
        gcs.create_bucket(bucket)
    await seed_gcs(gcs, source, "dl/", plan_document_library(10))
    for name, expected in ((instance.name, "Succeeded"), ("no-such-instance", "Failed")):
        spec = gcp_spec(CloudSql(name, instance.database, ""), source, destination)
        resp = await api.post("/api/v1/backups", json=spec, headers={**headers, "Idempotency-Key": f"gcp-{name}"})
        assert resp.status_code == 202, resp.text
        doc = await system.wait_for(resp.json()["backupId"], timeout=120)
        assert doc["state"] == expected, doc["message"]
    return destination


async def _azure_backups(system: System, azure: AzureFakes, api: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Two azure backups that succeed (a PostgreSQL and a MySQL flexible server) and one that fails (an unknown
    server); the backup container."""
    database = system.source_dsn.rsplit("/", 1)[-1]
    name = f"secret-{uuid.uuid4().hex[:8]}"
    server = FlexibleServer(azure.add_server(name, system.source_dsn), database, system.source_dsn)
    source, destination = f"asrc-{name}", f"adst-{name}"
    async with blob_client(azure) as client:
        for container in (source, destination):
            await client.create_container(container)
        await seed_blobs(client, source, "dl/", plan_document_library(10))
    mysql = FlexibleServer(azure.add_mysql_server(f"my-{name}"), "shop", "")
    for target, expected in (
        (server, "Succeeded"),
        (mysql, "Succeeded"),
        (FlexibleServer(azure.server_id("no-such-server"), database, ""), "Failed"),
    ):
        spec = azure_spec(target, source, destination)
        key = f"azure-{target.id.rsplit('/', 1)[-1]}"
        resp = await api.post("/api/v1/backups", json=spec, headers={**headers, "Idempotency-Key": key})
        assert resp.status_code == 202, resp.text
        doc = await system.wait_for(resp.json()["backupId"], timeout=120)
        assert doc["state"] == expected, doc["message"]
    return destination


async def _blobs(azure: AzureFakes, container: str) -> list[tuple[str, bytes]]:
    async with blob_client(azure) as client:
        out = []
        async for blob in client.get_container_client(container).list_blobs():
            body = await (await client.get_blob_client(container, blob.name).download_blob()).readall()
            out.append((f"azure://{container}/{blob.name}", bytes(body)))
        return out


def _sas_signatures(azure: AzureFakes) -> dict[str, str]:
    """The signature of every SAS the services handed to Resource Manager (what makes a SAS a secret)."""
    found = {}
    for i, url in enumerate(azure.arm.state()["sas"]):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        found[f"Azure SAS signature {i}"] = query["sig"][0]
    return found


async def _gcs_objects(gcp: GcpFakes, bucket: str) -> list[tuple[str, bytes]]:
    gcs = gcp.client()
    return [(f"gs://{bucket}/{b.name}", b.download_as_bytes()) for b in gcs.list_blobs(bucket)]


async def test_no_secret_in_events_logs_projection_dead_letters_or_artefacts(
    system: System, tenants: dict[str, Tenant], s3: Any, buckets: tuple[str, str], gcp: GcpFakes, azure: AzureFakes
) -> None:
    azure.fast()
    source, destination = buckets
    conn = await asyncpg.connect(system.source_dsn)
    try:
        await conn.execute(liferay_database_sql(scale=1))
    finally:
        await conn.close()
    await seed_document_library(s3, source, "", plan_document_library(30))
    ops = tenants["ops"]

    async with httpx.AsyncClient(base_url=system.api, timeout=10) as api:
        outcomes = {}
        for instance, expected in (("secret-db", "Succeeded"), ("missing-db", "Failed"), ("query-password", "Failed")):
            spec = system.spec(source, destination)
            spec["database"]["instanceId"] = instance
            spec["database"]["databaseName"] = "no_such_database" if instance == "missing-db" else None
            resp = await api.post("/api/v1/backups", json=spec, headers={**ops.headers, "Idempotency-Key": instance})
            assert resp.status_code == 202, resp.text
            outcomes[instance] = (resp.json()["backupId"], expected)
        for backup_id, expected in outcomes.values():
            doc = await system.wait_for(backup_id, timeout=120)
            assert doc["state"] == expected, doc["message"]
        gcs_destination = await _gcp_backups(system, gcp, api, ops.headers)
        azure_destination = await _azure_backups(system, azure, api, ops.headers)
        # refused calls carrying secrets as tokens
        for token in (PASSWORD, SECRET_KEY, "not-a-token"):
            assert (await api.get("/api/v1/backups", headers={"Authorization": f"Bearer {token}"})).status_code == 401

    nc = await nats.connect(system.nats.url)
    try:
        await nc.jetstream().publish(Topology().request_subject, b'{"requestId": "poison", "spec": ')  # a dead letter
        await system.wait_for(outcomes["secret-db"][0])  # give the intake a moment; then read everything
        messages = await _stream_messages(nc)
    finally:
        await nc.close()

    users = system.nats.users
    assert users is not None
    named = {
        "database password": PASSWORD,
        "database password (query string)": QUERY_PASSWORD,
        "S3 secret key": SECRET_KEY,
        **{f"NATS password of {user}": password for user, password in users.passwords.items()},
        "operator API token": system.api_token,
        **{f"API token of {t.name}": t.token for t in tenants.values()},
        "Google refresh token": gcp.refresh_token,
        **{f"Google access token {i}": token for i, token in enumerate(gcp.sqladmin.state()["issuedTokens"])},
    }
    assert any(label.startswith("Google access token") for label in named), "the gcp provider never authenticated"
    named |= {
        "Azure identity header": azure.identity.secret,
        **{f"Azure access token {i}": token for i, token in enumerate(azure.identity.issued())},
        **_sas_signatures(azure),
    }
    assert any(label.startswith("Azure access token") for label in named), "the azure provider never authenticated"
    assert any(label.startswith("Azure SAS") for label in named), "the azure provider handed out no SAS"
    logs = [(str(p), p.read_bytes()) for p in sorted(system.log_dir.glob("*.log"))]
    places = {
        "stream messages": messages,
        "service logs": logs,
        "projection rows": await _projection_rows(system.projection_dsn),
        "artefacts": await _objects(s3, destination)
        + await _gcs_objects(gcp, gcs_destination)
        + await _blobs(azure, azure_destination),
    }
    assert any("Lc2-Dlq-Reason" in blob.decode(errors="replace") for _, blob in messages), "no dead letter to scan"
    assert any(where.endswith("metadata.json") for where, _ in places["artefacts"])
    assert any(where.startswith("gs://") and where.endswith("metadata.json") for where, _ in places["artefacts"])
    assert any(where.startswith("azure://") and where.endswith("metadata.json") for where, _ in places["artefacts"])
    found = [
        f"{label} in {kind}: {where}"
        for kind, items in places.items()
        for where, blob in items
        for label, secret in named.items()
        for encoded in _encodings(secret)
        if encoded.encode() in blob
    ]
    scanned = {kind: len(items) for kind, items in places.items()}
    variants = sum(len(_encodings(secret)) for secret in named.values())
    print(f"secrets scan: {len(named)} secrets ({variants} encoded forms) over {scanned} items: none found")
    # not a vacuous scan: the failures' reasons are there, and the logs went down to DEBUG
    rows = b"".join(blob for _, blob in places["projection rows"])
    assert b"no_such_database" in rows and b"nobody_" in rows
    assert any(b" DEBUG " in blob for _, blob in logs)
    assert not found, "\n".join(found)

    # The grants were enough for all of it: the server refused nothing the services did.
    violations = [
        line for line in (system.nats.directory / "nats-server.log").read_text().splitlines() if "Violation" in line
    ]
    assert not violations, "\n".join(violations[:10])


def test_dsn_passwords_never_reach_the_command_line(tmp_path: Path) -> None:
    from lc2backup.providers.local.dumping import DumpTarget

    for dsn in (
        f"postgresql://u:{PASSWORD}@h:5432/db",
        f"postgresql://u@h:5432/db?sslmode=disable&password={PASSWORD}",
    ):
        target = DumpTarget.parse(dsn, None)
        assert PASSWORD not in target.dsn and target.password == PASSWORD
