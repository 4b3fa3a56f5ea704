"""restorer's composition root: restore providers from settings, the intake and the work consumers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta

from lc2backup.domain import registry
from lc2backup.domain.events import RestoreAdmitted
from lc2backup.eventing import LeasedWork, Leases, ensure_lanes, ensure_leases
from lc2backup.providers.factory import restore_providers
from lc2backup.restorer.handlers import RestoreIntake, RestoreWorker
from lc2backup.restorer.settings import Settings
from lc2backup.runtime import TaskGroupStopper, scaffold

NAME = "restorer"
INTAKE_CONSUMER = "restorer-intake"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack, scaffold(NAME, settings, stop, registry()) as parts:
        topology = parts.topology
        providers = await restore_providers(settings, stack)
        owner = f"{NAME}@{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"  # this process, never reused
        leases = Leases(await ensure_leases(parts.js, topology), owner, settings.lease_seconds)
        background = LeasedWork(leases)
        stack.push_async_callback(background.close)  # at shutdown: stop the restores, give their leases up
        intake = RestoreIntake(parts.store, await ensure_lanes(parts.js, topology), providers)
        worker = RestoreWorker(
            parts.store,
            providers,
            background,
            poll_interval=settings.poll_interval_seconds,
            max_concurrent=settings.max_concurrent_restores,
            deadline=timedelta(hours=settings.deadline_hours),
        )
        commands = parts.consumer(topology.commands_stream, INTAKE_CONSUMER, topology.restore_subject)
        events = parts.consumer(topology.events_stream, NAME, *topology.events_of_type(RestoreAdmitted.event_type))
        group = TaskGroupStopper(stop)
        # A readable command always ends in an event: a failure is an outage, never poison.
        group.start("intake", parts.runner(commands, intake.on_command, max_error_attempts=1_000_000).run(stop))
        group.start("work", parts.runner(events, worker.on_event, on_dead_letter=worker.on_dead_letter).run(stop))
        async with parts.serving_health():
            await group.wait()
