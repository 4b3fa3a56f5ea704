"""Connecting to NATS: retried until it answers (or we are told to stop), reconnecting forever after."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client as NatsClient

from lc2backup.runtime.settings import NatsSettings

log = logging.getLogger(__name__)


async def connect_nats(settings: NatsSettings, name: str, stop: asyncio.Event | None = None) -> NatsClient:
    async def error_cb(exc: Exception) -> None:
        log.warning("nats: %r", exc)

    async def disconnected_cb() -> None:
        log.warning("nats: disconnected")

    async def reconnected_cb() -> None:
        log.info("nats: reconnected")

    delay = 0.2
    while True:
        try:
            return await nats.connect(
                settings.url,
                name=f"lc2backup-{name}",
                user=settings.user,
                password=settings.password.get_secret_value() if settings.password else None,
                user_credentials=settings.creds_file,
                inbox_prefix=settings.inbox(),
                connect_timeout=settings.connect_timeout,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                allow_reconnect=True,
                error_cb=error_cb,
                disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb,
            )
        except Exception as exc:
            if stop is not None and stop.is_set():
                raise
            log.warning("nats at %s not reachable (%r); retrying in %.1fs", settings.url, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
