"""B5 — memory: peak RSS (the kernel's ``VmHWM``) of db-export and doclib-transfer, small run against big run.

db-export dumps a ~10 MB and a ≥ 1 GB database; doclib-transfer copies 1,000 and 50,000 objects (1 KiB each:
the count is what could grow memory, not the bytes, which never pass through the process). The measured
service is restarted before every run, so its high-water mark belongs to that run alone. At the end the
peak of every one of the five services is reported against the 150 MB ceiling.
"""

from __future__ import annotations

import json

from bench.context import Context
from bench.data import database, library, seed
from bench.report import Row
from bench.s3 import bench_s3_client, ensure_bucket
from bench.stats import Goal, Measure
from bench.system import BenchSystem, spec

ID = "B5"
TITLE = "memory: peak RSS, small run vs big run"
MB = 1_000_000
EMPTY = "b5-empty"


def databases(ctx: Context) -> dict[str, tuple[str, int]]:
    """The small and the big database (the big one is B6's too): instance id -> (DSN, bytes)."""
    sizes = ctx.sizes
    return {
        "bench-small": database(ctx, "bench_small", sizes.b5_small_db_scale),
        "bench-big": database(ctx, "bench_big", sizes.b5_big_db_scale, sizes.b5_min_big_db_bytes),
    }


async def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    dbs = databases(ctx)
    small_lib, big_lib = library(sizes.b5_small_objects, small=True), library(sizes.b5_big_objects, small=True)
    system = BenchSystem(
        ctx.stack,
        ctx.scratch("b5"),
        base_env={"LC2_LOCAL__DATABASES": json.dumps({k: dsn for k, (dsn, _) in dbs.items()})},
    )
    peaks = {name: Measure("MB") for name in ("db-small", "db-big", "dl-small", "dl-big")}
    async with bench_s3_client(ctx.stack) as s3:
        for bucket, layout in ((EMPTY, None), ("b5-small", small_lib), ("b5-big", big_lib)):
            await ensure_bucket(s3, bucket)
            if layout is not None:
                ctx.say(f"  seeding {bucket} with {layout.total_objects} objects")
                await seed(s3, bucket, layout)
        await ensure_bucket(s3, "b5-backups")
        system.start()
        try:
            await system.connect()
            for _ in range(sizes.repetitions):
                for key, instance in (("db-small", "bench-small"), ("db-big", "bench-big")):
                    system.restart("db-export")
                    await system.run_backup(
                        spec(EMPTY, "b5-backups", instance=instance, database=instance_db(instance))
                    )
                    peaks[key].add(system.peak_rss("db-export") / MB)
                for key, bucket in (("dl-small", "b5-small"), ("dl-big", "b5-big")):
                    system.restart("doclib-transfer")
                    await system.run_backup(spec(bucket, "b5-backups", instance="bench-small", database="bench_small"))
                    peaks[key].add(system.peak_rss("doclib-transfer") / MB)
            everyone = {name: system.peak_rss(name) / MB for name in system.names}
        finally:
            await system.close()
            system.stop()
    small_mb, big_mb = dbs["bench-small"][1] / MB, dbs["bench-big"][1] / MB
    ceiling = Goal("value", "<=", 150)
    rows = [
        Row(ID, f"db-export, dumping {big_mb:,.0f} MB vs {small_mb:,.0f} MB", peaks["db-big"], "small run",
            peaks["db-small"], Goal("ratio", "<=", 1.2)),
        Row(ID, f"doclib-transfer, copying {big_lib.total_objects:,} vs {small_lib.total_objects:,} objects",
            peaks["dl-big"], "small run", peaks["dl-small"], Goal("ratio", "<=", 1.2)),
        Row(ID, "db-export, peak of the big runs", peaks["db-big"], goal=ceiling),
        Row(ID, "doclib-transfer, peak of the big runs", peaks["dl-big"], goal=ceiling),
    ]  # fmt: skip
    for name, peak in everyone.items():
        if name not in ("db-export", "doclib-transfer"):
            rows.append(Row(ID, f"{name}, peak over the whole benchmark", Measure("MB", [peak]), goal=ceiling))
    return rows


def instance_db(instance: str) -> str:
    return instance.replace("-", "_")
