"""The projector: catch up from the checkpoint with batched reads of the stream, then wait for new events.

No consumer state on the server: the PostgreSQL checkpoint is the only position, so the projection can be
dropped and replayed at will. A core subscription on the event subjects only wakes the loop up; a periodic
re-read covers a missed wake-up. While PostgreSQL is down the loop pauses (``ready`` is False) and resumes
from the checkpoint when it returns: nothing is lost, because nothing was acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from nats.aio.client import Client as NatsClient

from lc2backup.archiver.projection import Decoded, apply_batch, checkpoint, decode_page
from lc2backup.domain.wire import EventRegistry
from lc2backup.eventing import DirectReader, EventingError, Topology

log = logging.getLogger(__name__)


class Projector:
    def __init__(
        self,
        nc: NatsClient,
        pool: asyncpg.Pool,
        registry: EventRegistry,
        topology: Topology,
        batch_size: int = 1000,
        idle_poll: float = 1.0,
    ) -> None:
        self._nc = nc
        self._pool = pool
        self._registry = registry
        self._topology = topology
        self._reader = DirectReader(nc, topology.events_stream)
        self._batch = batch_size
        self._idle = idle_poll
        self.ready = False
        self.applied = 0
        self.unreadable = 0
        self.last_error: str | None = None

    async def catch_up(self) -> int:
        """Apply everything the stream holds now; returns the number of events applied."""
        applied = 0
        async with self._pool.acquire() as conn:
            page, more = await self._read(await checkpoint(conn) + 1)
            ahead: asyncio.Task[tuple[Decoded, bool]] | None = None
            try:
                while page.last_sequence:
                    if more:  # the next page is read and decoded while this one is written (benchmark B3)
                        ahead = asyncio.create_task(self._read(page.last_sequence + 1))
                    result = await apply_batch(conn, page)
                    if result.stale:  # the checkpoint moved back since the page was read (a rebuild's reset)
                        if ahead is not None:
                            ahead.cancel()
                            ahead = None
                        log.info("the checkpoint moved back to %d: reading again from there", result.checkpoint)
                        page, more = await self._read(result.checkpoint + 1)
                        continue
                    for message, reason in result.poison:  # kept in the stream; skipped here, loudly
                        self.unreadable += 1
                        log.error("event seq=%d cannot be projected: %s", message.sequence, reason)
                    applied += result.events
                    if ahead is None:
                        break
                    (page, more), ahead = await ahead, None
            finally:
                if ahead is not None:
                    ahead.cancel()
        self.applied += applied
        return applied

    async def _read(self, start: int) -> tuple[Decoded, bool]:
        """The page from ``start`` on, decoded, and whether the stream holds more after it."""
        batch = await self._reader.read(self._topology.all_events, start, self._batch)
        return decode_page(self._registry, start, batch.messages, self._topology), batch.more

    async def run(self, stop: asyncio.Event) -> None:
        wake = asyncio.Event()

        async def on_event(_msg: object) -> None:
            wake.set()

        sub = await self._nc.subscribe(self._topology.all_events, cb=on_event)
        delay = 0.5
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    started = time.monotonic()
                    count = await self.catch_up()
                    self.ready, self.last_error, delay = True, None, 0.5
                    if count:
                        log.debug("projected %d events in %.3fs", count, time.monotonic() - started)
                        continue
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, EventingError) as exc:
                    self.ready, self.last_error = False, f"{type(exc).__name__}: {exc}"
                    log.warning("projection paused: %s; retrying in %.1fs", self.last_error, delay)
                    await _wait(stop, delay)
                    delay = min(delay * 2, 5.0)
                    continue
                await _wait_any(stop, wake, self._idle)
        finally:
            await sub.unsubscribe()
            await self._reader.close()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
