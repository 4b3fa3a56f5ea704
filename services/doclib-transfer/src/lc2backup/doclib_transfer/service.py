"""doclib-transfer's composition root: providers from settings, one durable consumer on the event log."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from lc2backup.doclib_transfer.handlers import TransferBranch
from lc2backup.doclib_transfer.settings import Settings
from lc2backup.domain import registry
from lc2backup.domain.events import BackupAdmitted
from lc2backup.providers.factory import transfer_providers
from lc2backup.runtime import TaskGroupStopper, scaffold

NAME = "doclib-transfer"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack, scaffold(NAME, settings, stop, registry()) as parts:
        providers = await transfer_providers(settings, stack)
        branch = TransferBranch(
            parts.store,
            providers,
            poll_interval=settings.poll_interval_seconds,
            deadline=timedelta(hours=settings.deadline_hours),
            max_concurrent_copies=settings.max_concurrent_copies,
            slice_seconds=settings.copy_slice_seconds,
        )
        events = parts.consumer(
            parts.topology.events_stream, "doclib-transfer", *parts.topology.events_of_type(BackupAdmitted.event_type)
        )
        group = TaskGroupStopper(stop)
        group.start("events", parts.runner(events, branch.on_event, on_dead_letter=branch.on_dead_letter).run(stop))
        async with parts.serving_health():
            await group.wait()
