"""B4 — document-library copy on SeaweedFS: our doclib-transfer service against ``aws s3 sync`` and ``rclone``.

One source bucket of ``b4_objects`` objects in Liferay's layout (4–64 KiB, one 2 MiB object every
``b4_large_every``, 20 % under the generated-file folders), copied server-side into a fresh bucket per run,
excluding the generated folders; the tools take turns (ours, aws, rclone) in every repetition. Ours is the
product path: a backup submitted to the running services (the database branch instant), timed on the event
log from ``BackupAdmitted`` to ``DocumentLibraryTransferCompleted`` — company discovery, the copy, the
manifest and the progress events included; the peers are timed around their process. Every destination is
checked: exactly the regular objects, no generated file.
"""

from __future__ import annotations

from typing import Any

from bench import peers
from bench.context import Context
from bench.data import COMPANIES, library, seed
from bench.report import Row
from bench.s3 import bench_s3_client, count_objects, ensure_bucket
from bench.stats import Goal, Measure
from bench.system import BenchSystem, spec
from lc2backup.domain import is_generated

ID = "B4"
TITLE = "document-library copy, SeaweedFS bucket to bucket, generated files excluded"
SOURCE = "b4-source"


async def _check(s3: Any, bucket: str, prefix: str, expected: int, what: str) -> None:
    count, _, keys = await count_objects(s3, bucket, prefix)
    generated = sum(is_generated(k[len(prefix) :]) for k in keys)
    if count != expected or generated:
        raise RuntimeError(f"{what}: {count} objects ({generated} generated) in {bucket}/{prefix}, expected {expected}")


async def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    layout = library(sizes.b4_objects, large_every=sizes.b4_large_every)
    expected = len(layout.regular)
    system = BenchSystem(
        ctx.stack,
        ctx.scratch("b4"),
        overrides={"db-export": {"LC2_LOCAL__MODE": "instant"}},
        names=("crd-gateway", "db-export", "doclib-transfer", "metadata"),
    )
    ours, aws, rclone = Measure("s"), Measure("s"), Measure("s")
    async with bench_s3_client(ctx.stack) as s3:
        await ensure_bucket(s3, SOURCE)
        ctx.say(f"  seeding {layout.total_objects} objects")
        await seed(s3, SOURCE, layout)
        system.start()
        try:
            await system.connect()
            for rep in range(sizes.repetitions):
                destination = f"b4-ours-{rep}"
                await ensure_bucket(s3, destination)
                trail = await system.run_backup(spec(SOURCE, destination))
                ours.add(trail.occurred_between("BackupAdmitted", "DocumentLibraryTransferCompleted"))
                await _check(s3, destination, f"bench/{trail.backup_id}/documentlibrary/", expected, "ours")
                if ctx.peers.aws:
                    destination = f"b4-aws-{rep}"
                    await ensure_bucket(s3, destination)
                    aws.add(
                        peers.aws_sync(ctx.peers.aws, ctx.stack, SOURCE, destination, COMPANIES, ctx.scratch("aws"))
                    )
                    await _check(s3, destination, "", expected, "aws s3 sync")
                if ctx.peers.rclone:
                    destination = f"b4-rclone-{rep}"
                    await ensure_bucket(s3, destination)
                    rclone.add(peers.rclone_copy(ctx.peers.rclone, ctx.stack, SOURCE, destination, COMPANIES))
                    await _check(s3, destination, "", expected, "rclone copy")
        finally:
            await system.close()
            system.stop()
    note = f"{layout.total_objects} objects, {expected} copied, {sum(layout.regular.values()) / 2**20:.0f} MiB"
    rate = Measure("objects/s", [expected / s for s in ours.samples])
    rows = [Row(ID, "copy wall time (ours: service, admitted → completed)", ours, note=note)]
    if aws.samples:
        rows.append(Row(ID, "time vs aws s3 sync", ours, "aws s3 sync", aws, Goal("ratio", "<=", 0.7)))
    if rclone.samples:
        rows.append(Row(ID, "time vs rclone copy", ours, "rclone copy", rclone, Goal("ratio", "<=", 1.0)))
    rows.append(Row(ID, "our copy rate", rate))
    return rows
