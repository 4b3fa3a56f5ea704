"""metadata's composition root: artefact stores per provider, one durable consumer on the event log."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from lc2backup.domain import registry
from lc2backup.metadata.handlers import TRIGGERS, Completion
from lc2backup.metadata.settings import Settings
from lc2backup.providers.factory import artifact_stores
from lc2backup.runtime import TaskGroupStopper, scaffold

NAME = "metadata"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack, scaffold(NAME, settings, stop, registry()) as parts:
        stores = await artifact_stores(settings, stack)
        completion = Completion(parts.store, stores, deadline=timedelta(hours=settings.deadline_hours))
        events = parts.consumer(parts.topology.events_stream, "metadata", *parts.topology.events_of_type(*TRIGGERS))
        group = TaskGroupStopper(stop)
        runner = parts.runner(events, completion.on_event, on_dead_letter=completion.on_dead_letter)
        group.start("events", runner.run(stop))
        async with parts.serving_health():
            await group.wait()
