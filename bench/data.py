"""The data the benchmarks work on: Liferay-like databases and document libraries, made once per run."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from bench.context import Context
from lc2backup.devstack.seeding import DocumentLibraryLayout, liferay_database_sql, plan_document_library

COMPANIES = (20101, 20102, 20103)


def database(ctx: Context, name: str, scale: int, min_bytes: int = 0) -> tuple[str, int]:
    """A Liferay-like database (``liferay_database_sql(scale)``), created once; returns (DSN, size in bytes)."""
    pg = ctx.stack.postgres
    existing = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
    dsn = pg.create_database(name)
    if not existing:
        ctx.say(f"  creating database {name} (scale {scale})")
        pg.psql(liferay_database_sql(scale), name)
        pg.psql("VACUUM ANALYZE", name)
    size = int(pg.psql("SELECT pg_database_size(current_database())", name).strip())
    if size < min_bytes:
        raise RuntimeError(f"database {name} is {size} bytes, below the {min_bytes} the benchmark needs")
    return dsn, size


def library(objects: int, large_every: int = 0, small: bool = False) -> DocumentLibraryLayout:
    """``objects`` keys in Liferay's layout, 20 % of them generated files; ``small``: 1 KiB each (B5)."""
    layout = plan_document_library(objects, companies=COMPANIES, large_every=large_every)
    if small:
        layout.regular = dict.fromkeys(layout.regular, 1024)
        layout.generated = dict.fromkeys(layout.generated, 1024)
    return layout


async def seed(client: Any, bucket: str, layout: DocumentLibraryLayout, concurrency: int = 64) -> None:
    """Upload ``layout`` into ``bucket`` (pseudo-random bytes), unless the bucket already holds it."""
    listing = await client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    if listing.get("KeyCount", 0):
        return
    pool = random.Random(11).randbytes(8 * 1024 * 1024)
    items = iter([*layout.regular.items(), *layout.generated.items()])

    async def worker(n: int) -> None:
        for i, (key, size) in enumerate(items):
            start = (i * 7919 + n * 104729) % max(len(pool) - size, 1)
            await client.put_object(Bucket=bucket, Key=key, Body=pool[start : start + size])

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
