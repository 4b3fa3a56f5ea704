"""The CLI against the five services as real processes: apply (API and NATS), watch, get, list, events."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import nats
import pytest

from lc2backup.domain import backup_id_for_manifest
from lc2backup.eventing import Topology
from tests.cli.helpers import backup_id_in, lc2, write_manifest
from tests.polling import eventually
from tests.support import System

pytestmark = pytest.mark.e2e


def test_apply_through_the_api_then_watch_get_list_and_events(
    system: System, seeded: tuple[str, str], tmp_path: Path
) -> None:
    source, destination = seeded
    manifest = write_manifest(
        tmp_path / "m.yaml", system.spec(source, destination, tags={"team": "cli"}), name="cli-api"
    )

    applied = lc2("apply", "-f", str(manifest), "--api", system.api)
    assert applied.exit_code == 0, applied.output
    backup_id = backup_id_in(applied.stdout)
    assert f"lc2backup watch {backup_id}" in applied.stdout

    watched = lc2("watch", backup_id, "--api", system.api, "--timeout", "120")
    assert watched.exit_code == 0, watched.output + system.logs()
    assert "Succeeded" in watched.stdout
    assert "objects copied" in watched.stdout  # the document library's progress line

    doc = json.loads(lc2("get", backup_id, "--json", "--api", system.api).stdout)
    assert doc["state"] == "Succeeded" and doc["backupId"] == backup_id
    assert doc["source"] == {"kind": "api", "namespace": None, "name": None}
    counters = doc["status"]["documentLibrary"]["counters"]
    assert counters["objectsCopied"] == 32 and counters["objectsExcluded"] == 8

    shown = lc2("get", backup_id, "--api", system.api)
    assert shown.exit_code == 0
    for text in (backup_id, "Succeeded", doc["metadataLocation"], doc["status"]["database"]["export"]["location"]):
        assert text in shown.stdout
    assert "32/32 objects copied" in shown.stdout and "8 generated files skipped" in shown.stdout

    listed = lc2("list", "--api", system.api, "--project", "retail", "--state", "Succeeded")
    assert listed.exit_code == 0 and backup_id in listed.stdout
    assert lc2("list", "--api", system.api, "--project", "other").stdout.startswith("no backups match")

    events = lc2("events", backup_id, "--api", system.api)
    assert events.exit_code == 0
    for event_type in (
        "BackupRequested",
        "DatabaseExportCompleted",
        "DocumentLibraryTransferCompleted",
        "BackupSucceeded",
    ):
        assert event_type in events.stdout
    raw = json.loads(lc2("events", backup_id, "--json", "--api", system.api).stdout)
    assert [e["type"] for e in raw["items"]][-1] == "BackupSucceeded"

    # re-applying the same manifest is the same backup (the name is the idempotency key), not a second one
    again = lc2("apply", "-f", str(manifest), "--api", system.api)
    assert again.exit_code == 0 and backup_id_in(again.stdout) == backup_id
    everything = json.loads(lc2("list", "--all", "--limit", "1", "--json", "--api", system.api).stdout)
    assert [b["backupId"] for b in everything["items"]] == [backup_id]


def test_apply_through_nats_names_the_backup_like_the_gateway(
    system: System, seeded: tuple[str, str], tmp_path: Path
) -> None:
    source, destination = seeded
    spec = system.spec(source, destination)
    manifest = write_manifest(tmp_path / "m.yaml", spec, name="cli-nats", namespace="ops")

    applied = lc2(
        "apply", "-f", str(manifest), "--via", "nats", "--nats", system.nats.url, "--watch", "--api", system.api
    )
    assert applied.exit_code == 0, applied.output + system.logs()
    backup_id = backup_id_in(applied.stdout)
    assert backup_id == backup_id_for_manifest(spec["projectId"], "ops", "cli-nats")
    assert "Succeeded" in applied.stdout

    doc = json.loads(lc2("get", backup_id, "--json", "--api", system.api).stdout)
    assert doc["state"] == "Succeeded"
    assert doc["source"] == {"kind": "nats", "namespace": "ops", "name": "cli-nats"}

    again = lc2("apply", "-f", str(manifest), "--via", "nats", "--nats", system.nats.url)
    assert again.exit_code == 0 and backup_id_in(again.stdout) == backup_id
    assert "unchanged" in again.stdout  # JetStream dropped the duplicate (same Nats-Msg-Id)


def test_one_manifest_through_the_api_and_through_nats_is_one_backup(
    system: System, seeded: tuple[str, str], tmp_path: Path
) -> None:
    """docs/requests.md: a manifest is named by its project and namespace/name, whichever way the CLI sends it."""
    source, destination = seeded
    spec = system.spec(source, destination)
    manifest = write_manifest(tmp_path / "m.yaml", spec, name="both-ways", namespace="ops")

    through_api = lc2("apply", "-f", str(manifest), "--api", system.api)
    assert through_api.exit_code == 0, through_api.output
    backup_id = backup_id_in(through_api.stdout)
    assert backup_id == backup_id_for_manifest(spec["projectId"], "ops", "both-ways")
    published = asyncio.run(_commands_published(system.nats.url))
    through_nats = lc2(
        "apply", "-f", str(manifest), "--via", "nats", "--nats", system.nats.url, "--watch", "--api", system.api
    )
    assert through_nats.exit_code == 0, through_nats.output + system.logs()
    assert backup_id_in(through_nats.stdout) == backup_id and "Succeeded" in through_nats.stdout
    assert asyncio.run(_commands_published(system.nats.url)) == published + 1  # sent, not dropped as a duplicate
    asyncio.run(_intake_passed(system.nats.url, published + 1))  # crd-gateway decided about it
    everything = json.loads(lc2("list", "--all", "--json", "--api", system.api).stdout)
    assert [b["backupId"] for b in everything["items"]] == [backup_id]
    assert json.loads(lc2("get", backup_id, "--json", "--api", system.api).stdout)["source"]["kind"] == "api"


async def _commands_published(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(Topology().commands_stream)
        return int(info.state.last_seq)
    finally:
        await nc.close()


async def _intake_passed(url: str, sequence: int) -> None:
    """crd-gateway's intake has acknowledged the command stored at ``sequence`` (its ack floor passed it)."""
    nc = await nats.connect(url)

    async def handled() -> bool:
        info = await nc.jetstream().consumer_info(Topology().commands_stream, "crd-gateway-intake")
        assert info.ack_floor.stream_seq >= sequence, f"intake ack floor {info.ack_floor.stream_seq} < {sequence}"
        return True

    try:
        await eventually(handled, timeout=60, what=f"command {sequence} handled by crd-gateway")
    finally:
        await nc.close()


def test_an_invalid_manifest_reaches_neither_the_api_nor_nats(system: System, tmp_path: Path) -> None:
    spec = system.spec("src-bucket", "dst-bucket", projectId="NOT VALID")
    manifest = write_manifest(tmp_path / "bad.yaml", spec, name="invalid")
    before = asyncio.run(_commands_published(system.nats.url))
    for via in ("api", "nats"):
        result = lc2("apply", "-f", str(manifest), "--via", via, "--api", system.api, "--nats", system.nats.url)
        assert result.exit_code == 2, result.output
        assert "spec.projectId" in result.stderr
    assert asyncio.run(_commands_published(system.nats.url)) == before
    assert json.loads(lc2("list", "--json", "--api", system.api).stdout)["items"] == []


def test_watch_exits_1_with_the_reason_when_the_backup_fails(
    system: System, seeded: tuple[str, str], tmp_path: Path
) -> None:
    source, destination = seeded
    spec = system.spec(source, destination)
    spec["database"]["instanceId"] = "not-configured"
    manifest = write_manifest(tmp_path / "m.yaml", spec, name="cli-fails")
    backup_id = backup_id_in(lc2("apply", "-f", str(manifest), "--api", system.api).stdout)

    watched = lc2("watch", backup_id, "--api", system.api, "--timeout", "120")
    assert watched.exit_code == 1, watched.output + system.logs()
    assert "Failed" in watched.stderr
    assert "'not-configured' is not configured for the local provider" in watched.stderr

    listed = lc2("list", "--api", system.api, "--state", "Failed")
    assert backup_id in listed.stdout


def test_watch_exits_3_when_the_timeout_passes_first(system: System) -> None:
    unknown = str(uuid.uuid4())
    watched = lc2("watch", unknown, "--api", system.api, "--timeout", "1")
    assert watched.exit_code == 3
    assert f"backup {unknown} is not found" in watched.stderr
    missing = lc2("get", unknown, "--api", system.api)
    assert missing.exit_code == 1 and "not found" in missing.stderr
