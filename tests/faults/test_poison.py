"""Poison on every subject a service consumes: it ends in the dead-letter stream with the reason, once per
consumer that received it, and the services keep serving.

Inputs: bytes that are not JSON, a truncated envelope, JSON that is no envelope, an empty body, a large body,
an envelope of a schema version newer than this build, an invalid payload, an envelope published on another
backup's subject, and an unknown event type; a body over the stream's limit is refused by the server and
never stored. They are published on the subjects of a backup *before* it is requested: that backup must
still run to Succeeded (a message that is not an event is skipped by every fold, never decided on), and a
backup id that only ever received poison must never get an event. Which consumers receive which subject is
read from the live consumers, not assumed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from nats.js.errors import APIError

from lc2backup.crd_gateway import crd
from lc2backup.devstack.probes import http_status
from lc2backup.domain import backup_id_for_manifest, backup_id_for_request
from lc2backup.testing import KubeEmulator
from tests.faults.figures import FIGURES
from tests.faults.harness import (
    TOPOLOGY,
    EventLog,
    connect,
    eventually,
    projection_matches_the_log,
    settled,
    wait_terminal,
)
from tests.support import System

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
EVENT_TYPES = (
    "BackupAdmitted",
    "BackupRequested",
    "BackupSucceeded",
    "BackupFailed",
    "DatabaseExportCompleted",
    "DocumentLibraryTransferFailed",
    "BackupMetadataWritten",
    "NoSuchEvent",
)
DURABLES = {
    TOPOLOGY.events_stream: (
        "db-export",
        "doclib-transfer",
        "metadata",
        "crd-gateway-admission",
        "crd-gateway-status",
    ),
    TOPOLOGY.commands_stream: ("crd-gateway-intake",),
}


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeEmulator]:
    """A Kubernetes API, so that crd-gateway also runs its status consumer (it receives every event)."""
    emulator = KubeEmulator(tmp_path / "kube", crds=[ROOT / crd.DEPLOY_PATH])  # every CRD: it watches each kind
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def system_extra_env(kube: KubeEmulator) -> dict[str, str]:
    return {
        "LC2_LOCAL__MODE": "instant",  # the providers' work is not the point here
        "LC2_KUBERNETES__ENABLED": "true",
        "LC2_KUBERNETES__KUBECONFIG": str(kube.kubeconfig),
    }


def _envelope(backup_id: str, event_type: str, data: dict[str, Any], schema_version: int = 1) -> bytes:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": event_type,
            "schemaVersion": schema_version,
            "backupId": backup_id,
            "occurredAt": datetime.now(UTC).isoformat(),
            "correlationId": "poison",
            "producer": "poison",
            "data": data,
        }
    ).encode()


def poison(backup_id: str, event_type: str) -> dict[str, tuple[bytes, str]]:
    """name -> (body, what the dead letter's reason must say)."""
    real = _envelope(backup_id, event_type, {})
    unknown = "unknown event type" if event_type == "NoSuchEvent" else None
    return {
        "not-json": (b"\xff\xfe\x00 not json", "not a valid event envelope"),
        "truncated": (real[: len(real) // 2], "not a valid event envelope"),
        "no-envelope": (b'{"hello": "world"}', "not a valid event envelope"),
        "empty": (b"", "not a valid event envelope"),
        "large": (b'"' + b"x" * 200_000 + b'"', "not a valid event envelope"),
        "newer-schema": (
            _envelope(backup_id, event_type, {}, schema_version=99),
            unknown or "newer than this build",
        ),
        "invalid-payload": (
            _envelope(backup_id, event_type, {"noSuchField": True}),
            unknown or f"invalid {event_type} payload",
        ),
        "wrong-subject": (_envelope(str(uuid.uuid4()), "BackupAdmitted", {}), "does not match the envelope"),
    }


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching (``*`` one token, ``>`` the rest)."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(want) == len(got)


async def _filters(log: EventLog) -> dict[str, list[str]]:
    """durable -> the subjects it receives, as the server has them."""
    out: dict[str, list[str]] = {}
    for stream, durables in DURABLES.items():
        for durable in durables:
            config = (await log.js.consumer_info(stream, durable)).config
            out[durable] = list(config.filter_subjects or []) or [str(config.filter_subject)]
    return out


async def _dead_letters(log: EventLog) -> list[dict[str, str]]:
    info = await log.js.stream_info(TOPOLOGY.dlq_stream)
    letters = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await log.js.get_msg(TOPOLOGY.dlq_stream, seq)
        letters.append(dict(msg.headers or {}))
    return letters


@pytest.mark.timeout(300)
async def test_poison_on_every_consumed_subject_is_dead_lettered_and_the_services_keep_serving(
    system: System, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    victim = backup_id_for_request("poisoned-before-it-was-requested")
    nobody = str(uuid.uuid4())  # a backup id that only ever receives poison
    log = EventLog(await connect(system))
    try:
        filters = await eventually("every consumer exists", lambda: _filters(log), system)
        expected: dict[tuple[str, int], str] = {}  # (durable, stream sequence) -> reason fragment
        stored = 0
        for backup_id in (victim, nobody):
            for event_type in EVENT_TYPES:
                subject = TOPOLOGY.event_subject(backup_id, event_type)
                receivers = [d for d, subjects in filters.items() if any(matches(s, subject) for s in subjects)]
                for name, (body, reason) in poison(backup_id, event_type).items():
                    ack = await log.js.publish(subject, body, stream=TOPOLOGY.events_stream)
                    stored += 1
                    FIGURES.poison[f"event:{name}"] += 1
                    for durable in receivers:
                        expected[(durable, ack.seq)] = reason
                with pytest.raises(APIError):  # over the stream's max_msg_size: never stored
                    await log.js.publish(subject, b"x" * (300 * 1024), stream=TOPOLOGY.events_stream)
                FIGURES.poison["event:oversized"] += 1
                FIGURES.refused[("event", "over the event stream's max_msg_size")] += 1

        commands = {
            "not-utf8": (b"\xff\xfe\x00 not utf-8", "not UTF-8"),
            "truncated": (b'{"requestId": "x", "spec": {"proj', "not JSON"),
            "json-list": (b'["a", "list"]', "expected an object"),
            "too-large": (json.dumps({"requestId": "big", "spec": {"pad": "x" * 70_000}}).encode(), "too large"),
        }
        for name, (body, reason) in commands.items():
            ack = await log.js.publish(TOPOLOGY.request_subject, body, stream=TOPOLOGY.commands_stream)
            expected[("crd-gateway-intake", ack.seq)] = reason
            FIGURES.poison[f"command:{name}"] += 1
        with pytest.raises(nats.errors.MaxPayloadError):  # over the server's max_payload: never sent
            await log.js.publish(TOPOLOGY.request_subject, b"x" * (2 * 1024 * 1024), stream=TOPOLOGY.commands_stream)
        FIGURES.poison["command:oversized"] += 1
        FIGURES.refused[("command", "over the server's max_payload")] += 1
        unknown_kind = {"apiVersion": "backup.liferay.cloud/v1alpha1", "kind": "Restore", "metadata": {"name": "x"}}
        await log.js.publish(TOPOLOGY.request_subject, json.dumps({**unknown_kind, "spec": {}}).encode())
        FIGURES.poison["command:unknown-kind"] += 1

        async def all_dead_lettered() -> list[dict[str, str]] | None:
            letters = await _dead_letters(log)
            return letters if len(letters) >= len(expected) else None

        letters = await eventually("every poison message dead-lettered", all_dead_lettered, system, timeout=120)
        got: dict[tuple[str, int], list[str]] = defaultdict(list)
        for headers in letters:
            got[(headers["Lc2-Dlq-Consumer"], int(headers["Lc2-Dlq-Sequence"]))].append(headers["Lc2-Dlq-Reason"])
        assert set(got) == set(expected), "dead letters differ from what the consumers received"
        for key, reason in expected.items():
            assert len(got[key]) == 1 and reason in got[key][0], (key, reason, got[key])
        FIGURES.dead_letters += len(letters)
        FIGURES.dead_lettered += len({(durable == "crd-gateway-intake", seq) for durable, seq in got})

        # The backup whose subjects were full of poison before it was even requested runs as if there were none.
        spec = system.spec(source, destination)
        await log.request("poisoned-before-it-was-requested", spec)
        state = await wait_terminal(log, victim, system)
        assert state.state == "Succeeded", state.message
        history = await log.store.load(victim)
        assert len(history.skipped) == stored // 2
        assert [e.envelope.producer for e in history.events if e.envelope.producer == "poison"] == []
        assert (await log.store.load(nobody)).events == ()  # nothing was ever decided about a poisoned id
        rejected = await wait_terminal(log, backup_id_for_manifest("", "default", "x"), system)  # no spec: no project
        assert rejected.state == "Rejected" and "kind" in (rejected.message or "")
        FIGURES.rejected += 1

        # And every service still serves: a fresh backup succeeds, every process is alive and ready.
        fresh = await log.request("after-the-poison", spec)
        assert (await wait_terminal(log, fresh, system)).state == "Succeeded"
        await settled(log, system)
        await projection_matches_the_log(log, system, [victim, fresh])
        assert system.services is not None
        for service in system.services.services.values():
            assert service.process is not None and service.process.alive(), service.name
            assert await asyncio.to_thread(http_status, f"{service.url}/readyz") == 200, service.name
    finally:
        await log.close()
        await log.nc.close()
