"""The composition every worker service shares: NATS, streams, event store, dead letters, health, shutdown.

A service's ``service.run(settings, stop)`` opens ``ServiceScaffold`` with ``async with``, builds its handlers
from the parts, starts its consumer runners and serves health until ``stop`` is set. Closing the scaffold
drains NATS last, after every runner has finished its in-flight work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from lc2backup.domain.wire import EventRegistry
from lc2backup.eventing import (
    ConsumerRunner,
    ConsumerSpec,
    DeadLetterHook,
    DeadLetters,
    EventStore,
    Handler,
    RetryPolicy,
    Topology,
    ensure_streams,
)
from lc2backup.runtime.connections import connect_nats
from lc2backup.runtime.crashpoints import arm_from_env, crash_point
from lc2backup.runtime.health import HealthServer, ReadinessCheck
from lc2backup.runtime.logs import configure_logging
from lc2backup.runtime.settings import ServiceSettings
from lc2backup.runtime.telemetry import configure_tracing

log = logging.getLogger(__name__)


@dataclass
class ServiceScaffold:
    name: str
    settings: ServiceSettings
    stop: asyncio.Event
    nc: NatsClient
    js: JetStreamContext
    topology: Topology
    store: EventStore
    dead_letters: DeadLetters
    runners: list[ConsumerRunner] = field(default_factory=list)

    def runner(
        self,
        spec: ConsumerSpec,
        handler: Handler,
        *,
        concurrency: int | None = None,
        on_dead_letter: DeadLetterHook | None = None,
        max_error_attempts: int | None = None,
    ) -> ConsumerRunner:
        c = self.settings.consumer
        runner = ConsumerRunner(
            self.nc,
            spec,
            handler,
            dead_letters=self.dead_letters,
            concurrency=concurrency or c.concurrency,
            retry=RetryPolicy(max_attempts=max_error_attempts or c.max_error_attempts),
            grace=c.grace_seconds,
            on_dead_letter=on_dead_letter,
            at_step=crash_point,
        )
        self.runners.append(runner)
        return runner

    def consumer(self, stream: str, durable: str, *filter_subjects: str) -> ConsumerSpec:
        return ConsumerSpec(
            stream=stream,
            durable=durable,
            filter_subjects=filter_subjects,
            ack_wait=self.settings.consumer.ack_wait_seconds,
        )

    async def nats_ready(self) -> dict[str, bool]:
        return {"nats": self.nc.is_connected}

    @contextlib.asynccontextmanager
    async def serving_health(self, readiness: ReadinessCheck | None = None) -> AsyncIterator[HealthServer]:
        server = HealthServer(self.settings.health.host, self.settings.health.port, readiness or self.nats_ready)
        await server.start()
        log.info("%s ready (health on %s:%d)", self.name, self.settings.health.host, server.port)
        try:
            yield server
        finally:
            await server.stop()


@contextlib.asynccontextmanager
async def scaffold(
    name: str, settings: ServiceSettings, stop: asyncio.Event, registry: EventRegistry
) -> AsyncIterator[ServiceScaffold]:
    started = time.monotonic()
    configure_logging(name, settings.log_level, settings.log_format)
    configure_tracing(name, settings.trace_console)
    arm_from_env(os.environ)  # test-only crash points (lc2backup.runtime.crashpoints); inert unless LC2_CRASH_AT
    nc = await connect_nats(settings.nats, name, stop)
    try:
        js = nc.jetstream()
        topology = settings.streams.topology()
        # least privilege: only the stream manager's NATS user may update a stream
        await ensure_streams(js, topology, update=settings.streams.manage)
        store = EventStore(
            nc,
            registry,
            producer=name,
            topology=topology,
            cached_backups=settings.state_cache.max_backups,
            at_step=crash_point,
        )
        dead_letters = DeadLetters(js, topology, name)
        log.info("%s connected to %s in %.2fs", name, settings.nats.url, time.monotonic() - started)
        yield ServiceScaffold(name, settings, stop, nc, js, topology, store, dead_letters)
        await store.close()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.drain(), 10)
