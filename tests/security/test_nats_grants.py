"""NATS least privilege: each service may publish and subscribe only where its grant says, on a real server.

The positive half (the grants are enough) is the whole e2e suite, which runs every service as its own user;
here: what each user is refused, what it may still do, that the deployment ships the same grants, and that
they match who sends which event in the contracts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import yaml
from nats.aio.client import Client as NatsClient

from lc2backup.contracts import natsauth
from lc2backup.contracts.catalogue import OPERATIONS
from lc2backup.devstack import NatsServer
from lc2backup.devstack.nats import nats_server_binary
from lc2backup.domain import registry
from lc2backup.domain.events import BackupRequested, BackupSucceeded, RestoreAdmitted
from lc2backup.eventing import EventStore, Topology, ensure_streams
from lc2backup.eventing.permissions import SERVICES, STREAM_MANAGER, grants, inbox_prefix, password_variable
from lc2backup.eventing.topology import ConsumerSpec, ensure_consumer
from tests.polling import eventually

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parents[2]
T = Topology()


class Session:
    """One user's connection, collecting the permission violations the server reports to it."""

    def __init__(self, nc: NatsClient, violations: list[str]) -> None:
        self.nc = nc
        self.violations = violations

    async def refused(self, action: Callable[[], Awaitable[Any]], subject: str) -> None:
        """``action`` is refused by the server: a permissions violation naming ``subject``, and no answer."""
        before = len(self.violations)
        try:
            await action()
            await self.nc.flush()
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            pass

        def violated() -> bool:
            assert any(subject.lower() in v for v in self.violations[before:]), self.violations[before:]
            return True

        await eventually(violated, timeout=2, interval=0.05, what=f"a permissions violation for {subject}")


@pytest.fixture
async def admin(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(nats_server.url)
    await ensure_streams(nc.jetstream(), T)
    yield nc
    await nc.close()


@pytest.fixture
async def login(nats_server: NatsServer) -> AsyncIterator[Callable[[str], Awaitable[Session]]]:
    sessions: list[NatsClient] = []

    async def connect(user: str) -> Session:
        users = nats_server.users
        assert users is not None
        violations: list[str] = []

        async def on_error(exc: Exception) -> None:
            violations.append(str(exc).lower())

        nc = await nats.connect(
            nats_server.service_url,
            user=user,
            password=users.password(user),
            inbox_prefix=inbox_prefix(user),
            error_cb=on_error,
            allow_reconnect=False,
        )
        sessions.append(nc)
        return Session(nc, violations)

    yield connect
    for nc in sessions:
        await nc.close()


async def _count(admin: NatsClient, stream: str) -> int:
    return int((await admin.jetstream().stream_info(stream)).state.messages)


async def test_doclib_transfer_cannot_request_backups_or_read_commands(
    admin: NatsClient, login: Callable[[str], Awaitable[Session]]
) -> None:
    doclib = await login("doclib-transfer")
    js = doclib.nc.jetstream(timeout=0.5)
    await doclib.refused(lambda: doclib.nc.publish(T.request_subject, b"{}"), T.request_subject)
    await doclib.refused(lambda: js.publish(T.request_subject, b"{}"), T.request_subject)
    await doclib.refused(lambda: doclib.nc.subscribe("lc2.backup.cmd.>"), "lc2.backup.cmd.>")
    assert await _count(admin, T.commands_stream) == 0


async def test_metadata_cannot_append_event_types_it_does_not_own(
    admin: NatsClient, login: Callable[[str], Awaitable[Session]]
) -> None:
    metadata = await login("metadata")
    store = EventStore(metadata.nc, registry(), producer="metadata", topology=T, publish_timeout=0.5)
    try:
        subject = T.event_subject("00000000-0000-0000-0000-000000000001", BackupRequested.event_type)
        await metadata.refused(lambda: metadata.nc.jetstream(timeout=0.5).publish(subject, b"{}"), subject)
        # its own event types and its dead letters are allowed: the server takes them
        ack = await metadata.nc.jetstream(timeout=2).publish(T.dlq_subject("metadata"), b"poison")
        assert ack.stream == T.dlq_stream
        await metadata.refused(
            lambda: metadata.nc.publish(T.dlq_subject("db-export"), b"x"), T.dlq_subject("db-export")
        )
    finally:
        await store.close()
    assert await _count(admin, T.events_stream) == 0


async def test_db_export_cannot_read_the_commands_stream_or_other_inboxes(
    admin: NatsClient, login: Callable[[str], Awaitable[Session]]
) -> None:
    await admin.jetstream().publish(T.request_subject, b'{"requestId": "secret-plan", "spec": {}}')
    db = await login("db-export")
    api = "$JS.API"
    for subject in (
        f"{api}.CONSUMER.DURABLE.CREATE.{T.commands_stream}.db-export",
        f"{api}.CONSUMER.CREATE.{T.commands_stream}",
        f"{api}.DIRECT.GET.{T.commands_stream}",
        f"{api}.STREAM.MSG.GET.{T.commands_stream}",
        f"{api}.CONSUMER.MSG.NEXT.{T.commands_stream}.crd-gateway-intake",
        f"{api}.CONSUMER.DURABLE.CREATE.{T.events_stream}.metadata",  # another service's consumer
    ):
        await db.refused(lambda s=subject: db.nc.request(s, b"{}", timeout=0.5), subject)  # type: ignore[misc]
    for subject in ("_INBOX.>", f"{inbox_prefix('crd-gateway')}.>", "$JS.ACK.>", ">"):
        await db.refused(lambda s=subject: db.nc.subscribe(s), subject)  # type: ignore[misc]
    # what it does need still works: load a backup (Direct Get on the event stream), its own consumer
    reply = await db.nc.request(
        f"{api}.DIRECT.GET.{T.events_stream}", json.dumps({"last_by_subj": "lc2.backup.evt.x.y"}).encode(), timeout=2
    )
    assert (reply.headers or {}).get("Status") == "404"
    info = await db.nc.request(f"{api}.STREAM.INFO.{T.events_stream}", b"", timeout=2)
    assert json.loads(info.data)["config"]["name"] == T.events_stream


async def test_restorer_takes_restore_commands_only_and_appends_only_restore_events(
    admin: NatsClient, login: Callable[[str], Awaitable[Session]]
) -> None:
    await admin.jetstream().publish(T.request_subject, b'{"requestId": "a-backup", "spec": {}}')
    requester = await login("requester")
    ack = await requester.nc.jetstream(timeout=2).publish(T.restore_subject, b'{"requestId": "r1", "spec": {}}')
    assert ack.stream == T.commands_stream

    restorer = await login("restorer")
    js = restorer.nc.jetstream(timeout=2)
    # its own intake, filtered on restore commands, receives the restore command (and never the backup one)
    await ensure_consumer(js, ConsumerSpec(T.commands_stream, "restorer-intake", (T.restore_subject,)))
    intake = await js.pull_subscribe_bind("restorer-intake", stream=T.commands_stream)
    (command,) = await intake.fetch(1, timeout=2)
    assert (command.subject, json.loads(command.data)["requestId"]) == (T.restore_subject, "r1")
    await command.ack()
    # its own events are taken; another service's event types, commands and consumers are refused
    restore = "00000000-0000-0000-0000-000000000002"
    ack = await js.publish(T.event_subject(restore, RestoreAdmitted.event_type), b"{}")
    assert ack.stream == T.events_stream
    for subject in (T.request_subject, T.restore_subject, T.event_subject(restore, BackupSucceeded.event_type)):
        await restorer.refused(lambda s=subject: restorer.nc.publish(s, b"{}"), subject)  # type: ignore[misc]
    for subject in (
        f"$JS.API.CONSUMER.MSG.NEXT.{T.commands_stream}.crd-gateway-intake",
        f"$JS.API.DIRECT.GET.{T.commands_stream}",
    ):
        await restorer.refused(lambda s=subject: restorer.nc.request(s, b"{}", timeout=0.5), subject)  # type: ignore[misc]
    await restorer.refused(lambda: restorer.nc.publish(T.dlq_subject("db-export"), b"x"), T.dlq_subject("db-export"))
    assert await _count(admin, T.events_stream) == 1
    assert await _count(admin, T.commands_stream) == 1  # the backup command, waiting for crd-gateway


async def test_crd_gateway_sends_restore_commands_but_no_backup_commands(
    admin: NatsClient, login: Callable[[str], Awaitable[Session]]
) -> None:
    """A RestoreRequest CR becomes a restore command; a BackupRequest never becomes a command (the gateway's own
    intake records it), so the gateway may publish restore commands only."""
    gateway = await login("crd-gateway")
    ack = await gateway.nc.jetstream(timeout=2).publish(T.restore_subject, b'{"requestId": "r1", "spec": {}}')
    assert ack.stream == T.commands_stream
    await gateway.refused(lambda: gateway.nc.publish(T.request_subject, b"{}"), T.request_subject)
    assert await _count(admin, T.commands_stream) == 1


@pytest.mark.parametrize("user", sorted(SERVICES))
async def test_no_service_can_delete_purge_or_rewrite_the_log(
    admin: NatsClient, login: Callable[[str], Awaitable[Session]], user: str
) -> None:
    session = await login(user)
    verbs = ["DELETE", "PURGE"] + ([] if user == STREAM_MANAGER else ["UPDATE"])
    for verb in verbs:
        subject = f"$JS.API.STREAM.{verb}.{T.events_stream}"
        await session.refused(lambda s=subject: session.nc.request(s, b"{}", timeout=0.5), subject)  # type: ignore[misc]
    subject = f"$JS.API.STREAM.MSG.DELETE.{T.events_stream}"
    await session.refused(lambda: session.nc.request(subject, b'{"seq": 1}', timeout=0.5), subject)
    info = await admin.jetstream().stream_info(T.events_stream)
    assert info.config.deny_delete and info.config.deny_purge


async def test_requester_only_requests_and_nobody_connects_anonymously(
    admin: NatsClient, login: Callable[[str], Awaitable[Session]], nats_server: NatsServer
) -> None:
    requester = await login("requester")
    ack = await requester.nc.jetstream(timeout=2).publish(T.request_subject, b'{"requestId": "r1", "spec": {}}')
    assert ack.stream == T.commands_stream
    await requester.refused(lambda: requester.nc.subscribe(T.all_events), T.all_events)
    await requester.refused(lambda: requester.nc.publish(T.event_subject("x", "BackupSucceeded"), b"{}"), "lc2.backup")
    assert "authorization violation" in await _raw_connect(nats_server.port, {})
    assert "authorization violation" in await _raw_connect(nats_server.port, {"user": "db-export", "pass": "wrong"})
    users = nats_server.users
    assert users is not None
    assert await _raw_connect(nats_server.port, {"user": "db-export", "pass": users.password("db-export")}) == "pong"


async def _raw_connect(port: int, options: dict[str, str]) -> str:
    """The server's answer to CONNECT + PING on a plain socket (nats-py leaks its socket on a refused login)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()  # INFO
        writer.write(f"CONNECT {json.dumps({'verbose': False, **options})}\r\nPING\r\n".encode())
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip().lower()
    finally:
        writer.close()
        await writer.wait_closed()


def test_event_grants_match_who_sends_what_in_the_contracts() -> None:
    sent: dict[str, set[str]] = {}
    for op in OPERATIONS:
        if op.action == "send" and op.channel == "events":
            sent.setdefault(op.actor, set()).update(op.messages)
    for user, grant in grants().items():
        if user not in SERVICES:
            continue
        appended = {s.rsplit(".", 1)[-1] for s in grant.publish if s.startswith(f"{T.prefix}.evt.")}
        assert appended == sent.get(user, set()), user
        assert not any(s in (">", "_INBOX.>") or s.startswith("$JS.API.STREAM.DELETE") for s in grant.publish), user
        assert grant.subscribe[0] == f"{inbox_prefix(user)}.>", user


def _kustomize(target: str) -> list[dict[str, Any]]:
    done = subprocess.run(["kubectl", "kustomize", str(ROOT / target)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.mark.parametrize("target", ["deploy/k8s", "deploy/k8s/overlays/dev"])
def test_the_deployment_runs_nats_with_these_grants(target: str, tmp_path: Path) -> None:
    docs = _kustomize(target)
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert config_maps["nats-auth"]["data"] == natsauth.deploy_manifest()["data"]
    nats_conf = config_maps["nats-config"]["data"]["nats.conf"]
    assert "include ./auth.conf" in nats_conf
    (statefulset,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "nats"]
    pod = statefulset["spec"]["template"]["spec"]
    sources = pod["volumes"][[v["name"] for v in pod["volumes"]].index("config")]["projected"]["sources"]
    assert {s["configMap"]["name"] for s in sources} == {"nats-config", "nats-auth"}
    assert {"secretRef": {"name": natsauth.SECRET}} in pod["containers"][0]["envFrom"]

    # Every service connects as itself, with its own password; only the stream manager manages streams.
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["LC2_NATS__USER"]["value"] == name
        ref = env["LC2_NATS__PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": natsauth.SECRET, "key": password_variable(name)}
        assert env["LC2_STREAMS__MANAGE"]["value"] == ("true" if name == STREAM_MANAGER else "false")

    # nats-server itself accepts the rendered configuration with the Secret's passwords.
    (secret,) = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == natsauth.SECRET]
    assert set(secret["stringData"]) == {password_variable(u) for u in grants()}
    (tmp_path / "nats.conf").write_text(nats_conf.replace("/data/jetstream", str(tmp_path / "js")))
    (tmp_path / "auth.conf").write_text(config_maps["nats-auth"]["data"]["auth.conf"])
    env_vars = {**os.environ, **secret["stringData"], "POD_NAME": "nats-0"}
    done = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(tmp_path / "nats.conf")], env=env_vars, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
