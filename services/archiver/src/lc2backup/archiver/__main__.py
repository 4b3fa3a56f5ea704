"""``lc2backup-archiver`` (serve the projection and API) and ``lc2backup-archiver rebuild``."""

from __future__ import annotations

import asyncio
import sys

from lc2backup.archiver import service
from lc2backup.archiver.rebuilding import rebuild
from lc2backup.archiver.settings import Settings
from lc2backup.runtime import configure_logging, connect_nats, run


async def _rebuild(settings: Settings) -> None:
    configure_logging("archiver", settings.log_level, "text")
    nc = await connect_nats(settings.nats, "archiver-rebuild")
    try:
        async with service.open_pool(settings) as pool:
            count, seconds = await rebuild(nc, pool, settings.streams.topology(), settings.batch_size)
    finally:
        await nc.drain()
    print(f"rebuilt the projection from {count} events in {seconds:.2f}s")  # noqa: T201 - CLI output


def main() -> None:
    settings = Settings()
    if sys.argv[1:] == ["rebuild"]:
        asyncio.run(_rebuild(settings))
        return
    if sys.argv[1:]:
        sys.exit("usage: lc2backup-archiver [rebuild]")
    run(lambda stop: service.run(settings, stop))


if __name__ == "__main__":
    main()
