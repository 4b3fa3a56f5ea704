"""The five services as real processes on the shared stack, a fresh NATS and projection database per use.

Benchmarks submit backups as NATS commands and follow them through the event log with a core subscription
(no polling): each event's arrival time and ``occurredAt`` are kept, so latencies and phase durations come
from the log itself. Peak RSS is the kernel's high-water mark (``VmHWM``) of a service process, which is
why a benchmark restarts a service before each run it measures.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import psutil
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from lc2backup.devstack import LocalStack, NatsServer, ServiceSet

TERMINAL = ("BackupSucceeded", "BackupFailed", "BackupRejected")


def spec(
    source: str, destination: str, *, environment: str = "bench", instance: str = "bench-db", database: str = "lportal"
) -> dict[str, Any]:
    """A local-provider BackupRequest spec (the instant provider ignores the database and buckets)."""
    return {
        "projectId": "bench",
        "environment": environment,
        "provider": "local",
        "database": {"type": "dump", "instanceId": instance, "databaseName": database},
        "documentLibrary": {
            "sourceBucket": source,
            "destinationBucket": destination,
            "destinationPrefix": "bench/",
            "excludeGeneratedFiles": True,
        },
        "retentionDays": 1,
    }


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size as the kernel counts it (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


@dataclass
class Trail:
    """One backup as seen on the event log: event type -> (arrival, monotonic seconds; occurredAt)."""

    backup_id: str
    submitted: float = 0.0
    arrived: dict[str, float] = field(default_factory=dict)
    occurred: dict[str, datetime] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: str | None = None

    def occurred_between(self, first: str, last: str) -> float:
        return (self.occurred[last] - self.occurred[first]).total_seconds()


class EventLog:
    """Follows every backup event (core subscription) and wakes up whoever waits for a backup to end."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self.trails: dict[str, Trail] = {}
        self.events = 0

    async def start(self) -> None:
        await self._nc.subscribe("lc2.backup.evt.>", cb=self._on_event)

    def trail(self, backup_id: str) -> Trail:
        trail = self.trails.get(backup_id)
        if trail is None:
            trail = self.trails[backup_id] = Trail(backup_id)
        return trail

    async def _on_event(self, msg: Msg) -> None:
        now = time.monotonic()
        _, _, _, backup_id, event_type = msg.subject.split(".", 4)
        self.events += 1
        trail = self.trail(backup_id)
        trail.arrived.setdefault(event_type, now)
        if event_type not in trail.occurred:
            trail.occurred[event_type] = datetime.fromisoformat(json.loads(msg.data)["occurredAt"])
        if event_type in TERMINAL:
            trail.outcome = event_type
            trail.done.set()


@dataclass
class BenchSystem:
    """A fresh NATS and projection database on the shared stack, and the services (per-service env overrides)."""

    stack: LocalStack
    directory: Path
    base_env: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    names: tuple[str, ...] = ("crd-gateway", "db-export", "doclib-transfer", "metadata", "archiver")
    nats: NatsServer = field(init=False)
    services: ServiceSet = field(init=False)
    nc: NatsClient | None = None
    log: EventLog | None = None

    def __post_init__(self) -> None:
        self.nats = NatsServer(self.directory / "nats")

    def start(self) -> dict[str, float]:
        """Start NATS and the services (blocking; call on the main thread: child processes die with it)."""
        self.nats.start()
        projection = self.stack.postgres.create_database(f"proj_{uuid.uuid4().hex[:8]}")
        env = {
            **self.stack.env(),
            "LC2_NATS__URL": self.nats.url,
            "LC2_POSTGRES__DSN": projection,
            "LC2_POLL_INTERVAL_SECONDS": "1",
            "LC2_LOG_LEVEL": "WARNING",
            **self.base_env,
        }
        self.services = ServiceSet(env, self.directory / "logs", names=self.names)
        for name, extra in self.overrides.items():
            self.services[name].env.update(extra)
        return self.services.start()

    async def connect(self) -> EventLog:
        self.nc = await nats.connect(self.nats.url)
        self.log = EventLog(self.nc)
        await self.log.start()
        return self.log

    async def submit(self, spec: dict[str, Any], backup_id: str | None = None) -> str:
        assert self.nc is not None and self.log is not None
        backup_id = backup_id or str(uuid.uuid4())
        self.log.trail(backup_id).submitted = time.monotonic()
        body = json.dumps({"backupId": backup_id, "spec": spec}).encode()
        await self.nc.jetstream().publish("lc2.backup.cmd.request", body, headers={"Nats-Msg-Id": backup_id})
        return backup_id

    async def wait(self, backup_id: str, seconds: float) -> Trail:
        assert self.log is not None
        trail = self.log.trail(backup_id)
        try:
            async with asyncio.timeout(seconds):
                await trail.done.wait()
        except TimeoutError:
            raise RuntimeError(f"backup {backup_id} did not end within {seconds}s; logs in {self.directory}") from None
        return trail

    async def run_backup(self, spec: dict[str, Any], seconds: float = 1800) -> Trail:
        trail = await self.wait(await self.submit(spec), seconds)
        if trail.outcome != "BackupSucceeded":
            raise RuntimeError(f"backup ended {trail.outcome}; logs in {self.directory / 'logs'}")
        return trail

    def peak_rss(self, name: str) -> int:
        pid = self.services[name].pid
        assert pid is not None
        return peak_rss_bytes(pid)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each service and the NATS server have used so far."""
        pids = {name: self.services[name].pid for name in self.names} | {"nats-server": self.nats.pid}
        out = {}
        for name, pid in pids.items():
            if pid is not None:
                times = psutil.Process(pid).cpu_times()
                out[name] = times.user + times.system
        return out

    def restart(self, name: str) -> float:
        return self.services.restart(name)

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()
            self.nc = None

    def stop(self) -> None:
        self.services.stop()
        self.nats.stop()
