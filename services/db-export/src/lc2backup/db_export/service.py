"""db-export's composition root: providers from settings, one durable consumer on the event log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta

from lc2backup.db_export.handlers import DatabaseBranch
from lc2backup.db_export.settings import Settings
from lc2backup.domain import registry
from lc2backup.domain.events import BackupAdmitted
from lc2backup.eventing import LeasedWork, Leases, ensure_leases
from lc2backup.providers.factory import database_providers
from lc2backup.runtime import TaskGroupStopper, scaffold

NAME = "db-export"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack, scaffold(NAME, settings, stop, registry()) as parts:
        providers = await database_providers(settings, stack)
        owner = f"{NAME}@{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"  # this process, never reused
        leases = Leases(await ensure_leases(parts.js, parts.topology), owner, settings.lease_seconds)
        background = LeasedWork(leases)
        stack.push_async_callback(background.close)  # at shutdown: stop the dumps, give their leases up
        branch = DatabaseBranch(
            parts.store,
            providers,
            poll_interval=settings.poll_interval_seconds,
            deadline=timedelta(hours=settings.deadline_hours),
            max_concurrent_dumps=settings.max_concurrent_dumps,
            background=background,
        )
        events = parts.consumer(
            parts.topology.events_stream, "db-export", *parts.topology.events_of_type(BackupAdmitted.event_type)
        )
        group = TaskGroupStopper(stop)
        group.start("events", parts.runner(events, branch.on_event, on_dead_letter=branch.on_dead_letter).run(stop))
        async with parts.serving_health():
            await group.wait()
