"""archiver's composition root: PostgreSQL pool, the projector and the projection API in one process.

Shutdown order: stop the HTTP server (no new requests), let the projector finish its batch, close the
pool, drain NATS (in the scaffold).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import asyncpg
import uvicorn

from lc2backup.archiver.api import ApiResources, create_app
from lc2backup.archiver.archiving import Projector
from lc2backup.archiver.auth import TokenBook
from lc2backup.archiver.schema import migrate
from lc2backup.archiver.settings import Settings
from lc2backup.domain import registry
from lc2backup.runtime import TaskGroupStopper, scaffold

NAME = "archiver"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM belongs to the service's ordered shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def open_pool(settings: Settings, stop: asyncio.Event | None = None) -> AsyncIterator[asyncpg.Pool]:
    """A pool once PostgreSQL answers (retried, so the archiver can start before its database)."""
    delay = 0.2
    while True:
        try:
            pool = await asyncpg.create_pool(
                settings.postgres.dsn.get_secret_value(),
                min_size=settings.postgres.min_connections,
                max_size=settings.postgres.max_connections,
                timeout=5,
            )
            break
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if stop is not None and stop.is_set():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        yield pool
    finally:
        await pool.close()


async def run(settings: Settings, stop: asyncio.Event) -> None:
    tokens = TokenBook.from_settings(settings.api)  # a broken tokens file stops the start, loudly
    async with scaffold(NAME, settings, stop, registry()) as parts, open_pool(settings, stop) as pool:
        projector = Projector(parts.nc, pool, parts.store.registry, parts.topology, batch_size=settings.batch_size)
        app = create_app(ApiResources(pool, parts.nc, parts.topology, projector), tokens=tokens)
        server = _Server(
            uvicorn.Config(
                app,
                host=settings.api.host,
                port=settings.api.port,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
        )
        group = TaskGroupStopper(stop)
        group.start("projector", projector.run(stop))
        group.start("api", server.serve())

        await stop.wait()
        server.should_exit = True
        await group.wait()
