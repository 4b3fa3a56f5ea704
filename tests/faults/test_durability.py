"""Durability as configured, read back from live servers rather than from files.

1. The streams the services create on a running system: the event log is file-backed, refuses deletes and
   purges (tried, as admin), has no age limit, allows Direct Get, a 2-minute duplicate window and a 256 KiB
   message limit; commands are a work queue; dead letters are kept 30 days; the admission lanes are a
   file-backed KV bucket with history 1.
2. The deployment (``kubectl kustomize deploy/k8s/overlays/prod``): its ``nats.conf`` runs, nearly verbatim, as
   a 3-node JetStream cluster on loopback, and each server reports ``sync_always`` (``sync_interval: always``,
   fsync before every acknowledgement; see the Jepsen findings in reference/eventsourcing.md); crd-gateway,
   the stream manager, started with the deployment's ``lc2backup-config`` settings, creates R3 streams and an
   R3 KV bucket whose replicas are all current.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType
from nats.js.errors import APIError

from lc2backup.devstack import ManagedProcess, ServiceProcess, free_port
from lc2backup.devstack.nats import nats_server_binary
from lc2backup.devstack.probes import http_ok
from tests.faults.figures import FIGURES
from tests.faults.harness import TOPOLOGY, EventLog, connect, eventually
from tests.support import System

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
DAY = 24 * 3600.0


async def test_the_streams_the_services_create_are_durable_and_the_log_cannot_be_deleted(system: System) -> None:
    log = EventLog(await connect(system))
    try:
        events = await log.js.stream_info(TOPOLOGY.events_stream)
        commands = (await log.js.stream_info(TOPOLOGY.commands_stream)).config
        dlq = (await log.js.stream_info(TOPOLOGY.dlq_stream)).config
        lanes = await (await log.js.key_value(TOPOLOGY.lanes_bucket)).status()
        lanes_stream = (await log.js.stream_info(f"KV_{TOPOLOGY.lanes_bucket}")).config
        e = events.config
        checks: dict[str, tuple[object, object]] = {  # what: (live, wanted)
            "events storage": (e.storage, StorageType.FILE),
            "events retention": (e.retention, RetentionPolicy.LIMITS),
            "events deny_delete": (e.deny_delete, True),
            "events deny_purge": (e.deny_purge, True),
            "events max_age (none)": (e.max_age or 0, 0),
            "events allow_direct": (e.allow_direct, True),
            "events duplicate_window": (e.duplicate_window, 120.0),
            "events max_msg_size": (e.max_msg_size, 256 * 1024),
            "commands retention": (commands.retention, RetentionPolicy.WORK_QUEUE),
            "commands discard": (commands.discard, DiscardPolicy.NEW),
            "commands storage": (commands.storage, StorageType.FILE),
            "commands max_msg_size": (commands.max_msg_size, 1024 * 1024),
            "dlq storage": (dlq.storage, StorageType.FILE),
            "dlq max_age": (dlq.max_age, 30 * DAY),
            "lanes history": (lanes.history, 1),
            "lanes storage": (lanes_stream.storage, StorageType.FILE),
        }
        assert {what: live for what, (live, _) in checks.items()} == {what: want for what, (_, want) in checks.items()}

        await log.js.publish(TOPOLOGY.event_subject("durability", "Probe"), b"x", stream=TOPOLOGY.events_stream)
        with pytest.raises(APIError, match="delete"):
            await log.js.delete_msg(TOPOLOGY.events_stream, 1)
        with pytest.raises(APIError, match="purge"):
            await log.js.purge_stream(TOPOLOGY.events_stream)
        assert (await log.js.stream_info(TOPOLOGY.events_stream)).state.messages == events.state.messages + 1
        FIGURES.durability.append(
            f"{len(checks)} settings of the streams and the lanes bucket read back from a live server, delete and "
            "purge of the event log tried and refused"
        )
    finally:
        await log.close()
        await log.nc.close()


def _render(target: str) -> list[dict[str, Any]]:
    done = subprocess.run(["kubectl", "kustomize", str(ROOT / target)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _config_map(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    (found,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(name)]
    data: dict[str, str] = found["data"]
    return data


def node_config(deployed: str, name: str, ports: dict[str, int], routes: list[int], store: Path) -> str:
    """The deployment's nats.conf for one loopback node: its own names, ports and store; no auth include, no
    pid file; everything else (the jetstream block with ``sync_interval``, limits, lame duck) as deployed."""
    kept = [
        line for line in deployed.splitlines() if not re.match(r"\s*(server_name|listen|http|pid_file|include)\b", line)
    ]
    text = "\n".join(kept)
    text = re.sub(r"(?m)^(\s*)store_dir:.*$", lambda m: f"{m.group(1)}store_dir: {json.dumps(str(store))}", text)
    text = re.sub(r"(?s)cluster\s*\{.*?\n\}", "", text)  # the deployment's routes are cluster DNS names
    cluster = ", ".join(f"nats://127.0.0.1:{port}" for port in routes)
    header = f'server_name: {name}\nlisten: "127.0.0.1:{ports["client"]}"\nhttp: "127.0.0.1:{ports["monitor"]}"\n'
    footer = f'cluster {{\n  name: lc2backup\n  listen: "127.0.0.1:{ports["cluster"]}"\n  routes: [{cluster}]\n}}\n'
    return header + text + "\n" + footer


@pytest.fixture
def deployment() -> dict[str, Any]:
    docs = _render("deploy/k8s/overlays/prod")
    return {
        "nats.conf": _config_map(docs, "nats-config")["nats.conf"],
        "settings": _config_map(docs, "lc2backup-config"),
    }


@pytest.fixture
def cluster(tmp_path: Path, deployment: dict[str, Any]) -> Iterator[list[dict[str, int]]]:
    """Three nats-servers running the deployment's configuration, routed to each other on loopback."""
    nodes = [{"client": free_port(), "monitor": free_port(), "cluster": free_port()} for _ in range(3)]
    processes = []
    for i, ports in enumerate(nodes):
        directory = tmp_path / f"n{i}"
        directory.mkdir()
        routes = [other["cluster"] for j, other in enumerate(nodes) if j != i]
        config = node_config(deployment["nats.conf"], f"n{i}", ports, routes, directory / "jetstream")
        (directory / "nats.conf").write_text(config)
        process = ManagedProcess(
            f"nats-{i}", [nats_server_binary(), "-c", str(directory / "nats.conf")], log_path=directory / "nats.log"
        )
        process.start()
        processes.append(process)
    try:
        for process, ports in zip(processes, nodes, strict=True):  # JetStream (with a meta leader) answers
            process.wait_ready(functools.partial(http_ok, f"http://127.0.0.1:{ports['monitor']}/healthz"), timeout=60)
        yield nodes
    finally:
        for process in processes:
            process.stop()


def _varz(ports: dict[str, int]) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['monitor']}/varz", timeout=5) as resp:
        doc: dict[str, Any] = json.load(resp)
        return doc


@pytest.mark.timeout(180)
async def test_the_deployment_fsyncs_every_write_and_the_services_create_r3_streams(
    cluster: list[dict[str, int]], deployment: dict[str, Any], tmp_path: Path
) -> None:
    for ports in cluster:
        jetstream = _varz(ports)["jetstream"]["config"]
        assert jetstream["sync_always"] is True, jetstream  # sync_interval: always, as deployed

    settings: dict[str, str] = deployment["settings"]
    assert (settings["LC2_STREAMS__STORAGE"], settings["LC2_STREAMS__REPLICAS"]) == ("file", "3")
    env = {key: value for key, value in settings.items() if key.startswith("LC2_STREAMS__")}
    env |= {"LC2_NATS__URL": f"nats://127.0.0.1:{cluster[0]['client']}", "LC2_LOG_FORMAT": "text"}
    gateway = ServiceProcess("crd-gateway", env, tmp_path / "logs")  # the one service that creates the streams
    gateway.start(timeout=60)
    nc = await nats.connect(f"nats://127.0.0.1:{cluster[1]['client']}")
    try:
        js = nc.jetstream()
        names = [TOPOLOGY.events_stream, TOPOLOGY.commands_stream, TOPOLOGY.dlq_stream, f"KV_{TOPOLOGY.lanes_bucket}"]

        async def replicated() -> bool:
            for name in names:
                info = await js.stream_info(name)
                assert info.config.num_replicas == 3 and info.config.storage == StorageType.FILE, (name, info.config)
                peers = info.cluster.replicas if info.cluster else None
                if info.cluster is None or info.cluster.leader is None or not peers or len(peers) != 2:
                    return False
                if not all(peer.current for peer in peers):
                    return False
            return True

        await eventually("three current replicas of every stream", replicated, timeout=60)
        events = (await js.stream_info(TOPOLOGY.events_stream)).config
        assert events.deny_delete and events.deny_purge
        fsyncing = sum(_varz(ports)["jetstream"]["config"]["sync_always"] is True for ports in cluster)
        FIGURES.durability.append(
            f"the deployment's nats.conf on a {len(cluster)}-node cluster: sync_always on {fsyncing} of "
            f"{len(cluster)} nodes, {len(names)} streams (events, commands, dead letters, lanes) created R3 on file "
            "storage with every replica current, deny_delete and deny_purge on the R3 event log"
        )
    finally:
        await nc.close()
        gateway.stop()
