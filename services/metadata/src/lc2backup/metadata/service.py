"""metadata's composition root: artefact stores per provider, one durable consumer on the event log."""

from __future__ import annotations

import asyncio
import contextlib

from lc2backup.domain import registry
from lc2backup.metadata.handlers import TRIGGERS, Completion
from lc2backup.metadata.settings import Settings
from lc2backup.providers import ArtifactStore, s3_client
from lc2backup.providers.aws import open_artifact_store
from lc2backup.providers.local import S3ArtifactStore
from lc2backup.runtime import TaskGroupStopper, scaffold

NAME = "metadata"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack, scaffold(NAME, settings, stop, registry()) as parts:
        stores: dict[str, ArtifactStore] = {}
        if "local" in settings.providers:
            client = await stack.enter_async_context(s3_client(settings.s3))
            stores["local"] = S3ArtifactStore(client)
        if "aws" in settings.providers:
            stores["aws"] = await stack.enter_async_context(open_artifact_store(settings.aws))
        completion = Completion(parts.store, stores)
        events = parts.consumer(parts.topology.events_stream, "metadata", *parts.topology.events_of_type(*TRIGGERS))
        group = TaskGroupStopper(stop)
        group.start("events", parts.runner(events, completion.on_event).run(stop))
        async with parts.serving_health():
            await group.wait()
