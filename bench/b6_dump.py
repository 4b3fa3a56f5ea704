"""B6 — local dump throughput: db-export dumping the ≥ 1 GB database into the store, against ``pg_dump`` to a file.

Same database, same format and compression (custom format, zlib level 1, the local provider's default). Ours
is the service: timed on the event log from ``BackupAdmitted`` to ``DatabaseExportCompleted`` (connecting,
the dump piped into a multipart upload with its SHA-256, the checksum sidecar). The baseline is ``pg_dump``
writing a local file, timed around the process. Throughput is the database size over the time.
"""

from __future__ import annotations

import json
import subprocess
import time

from bench.b5_memory import EMPTY, MB, databases
from bench.context import Context
from bench.report import Row
from bench.s3 import bench_s3_client, ensure_bucket
from bench.stats import Goal, Measure
from bench.system import BenchSystem, spec
from lc2backup.devstack.postgres import pg_bindir

ID = "B6"
TITLE = "local dump throughput into the store vs pg_dump to a file"


def pg_dump_file(dsn: str, path: str) -> float:
    argv = [str(pg_bindir() / "pg_dump"), "--format=custom", "--compress=1", "--no-password", f"--file={path}", dsn]
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    return time.monotonic() - started


async def run(ctx: Context) -> list[Row]:
    dbs = databases(ctx)
    dsn, size = dbs["bench-big"]
    scratch = ctx.scratch("b6")
    system = BenchSystem(
        ctx.stack,
        scratch,
        base_env={"LC2_LOCAL__DATABASES": json.dumps({"bench-big": dsn})},
        overrides={"doclib-transfer": {"LC2_LOCAL__MODE": "instant"}},
        names=("crd-gateway", "db-export", "doclib-transfer", "metadata"),
    )
    ours, baseline = Measure("MB/s"), Measure("MB/s")
    async with bench_s3_client(ctx.stack) as s3:
        await ensure_bucket(s3, EMPTY)
        await ensure_bucket(s3, "b6-backups")
        system.start()
        try:
            await system.connect()
            for _ in range(ctx.sizes.repetitions):
                dump = scratch / "pg_dump.dump"
                baseline.add(size / MB / pg_dump_file(dsn, str(dump)))
                dump.unlink()
                trail = await system.run_backup(spec(EMPTY, "b6-backups", instance="bench-big", database="bench_big"))
                ours.add(size / MB / trail.occurred_between("BackupAdmitted", "DatabaseExportCompleted"))
        finally:
            await system.close()
            system.stop()
    note = f"database of {size / MB:,.0f} MB (pg_database_size), custom format, zlib level 1"
    return [Row(ID, "dump throughput", ours, "pg_dump -Fc -Z1 to a file", baseline, Goal("ratio", ">=", 0.9), note)]
