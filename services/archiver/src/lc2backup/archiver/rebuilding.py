"""``lc2backup-archiver rebuild``: drop the projection and replay it from the stream.

Safe beside a running archiver: both serialise on the checkpoint row (the reset takes it before the tables,
as a batch does), and a page the live archiver read before the reset is refused under that lock and read
again from checkpoint 0 (``apply_batch``), so each event is projected once, by whichever gets there first.
"""

from __future__ import annotations

import logging
import time

import asyncpg
from nats.aio.client import Client as NatsClient

from lc2backup.archiver.archiving import Projector
from lc2backup.archiver.schema import reset
from lc2backup.domain import registry
from lc2backup.eventing import Topology

log = logging.getLogger(__name__)


async def rebuild(nc: NatsClient, pool: asyncpg.Pool, topology: Topology, batch_size: int = 1000) -> tuple[int, float]:
    """Returns (events this process replayed, seconds); a live archiver may have replayed the others."""
    started = time.monotonic()
    async with pool.acquire() as conn:
        await reset(conn)
    projector = Projector(nc, pool, registry(), topology, batch_size=batch_size)
    applied = 0
    while count := await projector.catch_up():
        applied += count
    elapsed = time.monotonic() - started
    log.info("rebuilt the projection from %d events in %.2fs", applied, elapsed)
    return applied, elapsed
