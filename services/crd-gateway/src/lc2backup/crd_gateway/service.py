"""crd-gateway's composition root: NATS command intake (the Kubernetes watch plugs in beside it)."""

from __future__ import annotations

import asyncio

from lc2backup.crd_gateway.handlers import IntakeHandler
from lc2backup.crd_gateway.settings import Settings
from lc2backup.domain import registry
from lc2backup.runtime import TaskGroupStopper, scaffold

NAME = "crd-gateway"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with scaffold(NAME, settings, stop, registry()) as parts:
        intake = IntakeHandler(parts.store)
        commands = parts.consumer(parts.topology.commands_stream, "crd-gateway-intake", parts.topology.request_subject)
        group = TaskGroupStopper(stop)
        group.start(
            "intake", parts.runner(commands, intake.on_command, concurrency=settings.intake_concurrency).run(stop)
        )
        async with parts.serving_health():
            await group.wait()
