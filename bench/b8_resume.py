"""B8 — a document-library copy killed once at about half way: how many copies it makes in all.

One source bucket of ``b8_objects`` small objects in Liferay's layout (20 % generated, excluded), copied by the
doclib-transfer service into a fresh versioned bucket per repetition. The service carries a test-only crash
point (``copy:object@N``, N = half the regular objects: ``lc2backup.runtime.crashpoints``) and SIGKILLs itself
there; the benchmark starts it again, as a Deployment would, and the backup runs to its end. Counted at the
store (every version of every key under the copy's folder): copies in all / regular objects in the source; the
goal is ≤ 1.05. Beside it, what a restart from zero would have made in the same run: the copies the store held
when the service died, plus every object again. The copy set is checked: exactly the regular objects.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.context import Context
from bench.data import library, seed
from bench.report import Row
from bench.s3 import bench_s3_client, ensure_bucket
from bench.stats import Goal, Measure
from bench.system import BenchSystem, spec

ID = "B8"
TITLE = "document-library copy killed once at about 50 %: copies made in all / objects to copy"
SOURCE = "b8-source"
POINT = "copy:object"


async def _versions(s3: Any, bucket: str, prefix: str) -> tuple[int, int]:
    """(versions, distinct keys) under ``prefix``, as the store counts them."""
    versions, keys = 0, set()
    async for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            versions += 1
            keys.add(version["Key"])
    return versions, len(keys)


async def _settled_versions(s3: Any, bucket: str, prefix: str) -> int:
    """The count once the copies the killed process had in flight are through (two equal counts in a row)."""
    last = -1
    while True:
        count, _ = await _versions(s3, bucket, prefix)
        if count == last:
            return count
        last = count
        await asyncio.sleep(0.5)


async def _died(system: BenchSystem, name: str, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        process = system.services[name].process
        if process is None or not process.alive():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{name} did not reach its crash point within {seconds}s")


async def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    layout = library(sizes.b8_objects, small=True)
    regular = len(layout.regular)
    markers = ctx.scratch("b8") / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    system = BenchSystem(
        ctx.stack,
        ctx.scratch("b8"),
        overrides={
            "db-export": {"LC2_LOCAL__MODE": "instant"},
            "doclib-transfer": {"LC2_CRASH_AT": f"{POINT}@{regular // 2}", "LC2_CRASH_MARKERS": str(markers)},
        },
        names=("crd-gateway", "db-export", "doclib-transfer", "metadata"),
    )
    ours, from_zero = Measure("copies/object"), Measure("copies/object")
    async with bench_s3_client(ctx.stack) as s3:
        await ensure_bucket(s3, SOURCE)
        ctx.say(f"  seeding {layout.total_objects} objects")
        await seed(s3, SOURCE, layout)
        system.start()
        try:
            await system.connect()
            for rep in range(sizes.repetitions):
                (markers / POINT.replace("/", "_")).unlink(missing_ok=True)  # armed again
                destination = f"b8-dest-{rep}"
                await ensure_bucket(s3, destination)
                await s3.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
                backup_id = await system.submit(spec(SOURCE, destination, environment=f"b8-{rep}"))
                copies = f"bench/{backup_id}/documentlibrary/"
                await _died(system, "doclib-transfer", 1800)
                before = await _settled_versions(s3, destination, copies)
                system.restart("doclib-transfer")
                trail = await system.wait(backup_id, 1800)
                if trail.outcome != "BackupSucceeded":
                    raise RuntimeError(f"backup ended {trail.outcome}; logs in {system.directory / 'logs'}")
                total, keys = await _versions(s3, destination, copies)
                if keys != regular or not 0 < before < regular:
                    raise RuntimeError(f"{keys} keys copied of {regular}, {before} copies before the kill")
                ctx.say(f"  rep {rep}: {before} copies before the kill, {total} in all, {regular} objects")
                ours.add(total / regular)
                from_zero.add((before + regular) / regular)
        finally:
            await system.close()
            system.stop()
    note = f"{regular} objects copied ({layout.total_objects} listed), killed at object {regular // 2}"
    return [
        Row(ID, "copies in all / objects (killed once)", ours, goal=Goal("value", "<=", 1.05), note=note),
        Row(ID, "copies vs a restart from zero in the same run", ours, "restart from zero", from_zero),
    ]
