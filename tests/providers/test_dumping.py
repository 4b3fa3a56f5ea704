"""PgDumper against the stack's PostgreSQL and SeaweedFS: a dump that fails mid-way ends with its error.

Found by the 30 s NATS outage of tests/faults/test_outages.py: the progress report (an event append) failed
while ``pg_dump`` was still writing, the dumper killed ``pg_dump`` and then waited for it. asyncio's
``wait()`` returns only once the child's pipes are closed, and stdout, full while the report was failing,
had stopped being read, so it never saw its end: the handler hung for good, and every redelivery of the
backup joined it. The backup never ended.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from lc2backup.domain import BackupLayout
from lc2backup.domain.spec import parse_spec
from lc2backup.domain.state import ExportInfo
from lc2backup.providers.base import BackupJob, ExportStatus
from lc2backup.providers.local.dumping import EXTENSION, FORMAT, DumpTarget, PgDumper
from tests.support import local_spec

# ~40 MB of rows: uncompressed, pg_dump writes far more than the pipe and the reader's buffer hold
TABLE = """
CREATE TABLE attachments (id int PRIMARY KEY, body text);
INSERT INTO attachments SELECT g, repeat(md5(g::text), 12) FROM generate_series(1, 100000) g;
"""


class ReportLost(Exception):
    pass


@pytest.mark.timeout(120)
async def test_a_dump_whose_progress_report_fails_ends_with_that_error_and_leaves_no_object(
    pg_dsn: str, s3: Any, buckets: tuple[str, str]
) -> None:
    _, bucket = buckets
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(TABLE)
    finally:
        await conn.close()
    backup_id = "7c0a4f8e-0d7b-4b52-9c1e-2f1c7a3e9b10"
    spec = parse_spec(local_spec("source", bucket))
    layout = BackupLayout.of(spec, backup_id)
    target = DumpTarget.parse(pg_dsn, None)
    key = layout.database_key(target.database, EXTENSION)
    ref = ExportInfo(operation_id=key, location=layout.uri(key), format=FORMAT, restorable=True)

    failed_at: list[float] = []

    async def progress(_: ExportStatus) -> None:
        await asyncio.sleep(2)  # as an append while NATS is down: pg_dump fills the pipe meanwhile
        failed_at.append(time.monotonic())
        raise ReportLost("the progress event could not be appended")

    dumper = PgDumper(compress=0, progress_interval=0)
    with pytest.raises(ReportLost):
        # before the fix, wait() for the killed pg_dump never returned; only a cancellation (swallowed by the
        # dumper's clean-up, which then re-raised the report's error) ended it
        async with asyncio.timeout(60):
            await dumper.dump(s3, BackupJob(backup_id, spec, layout), ref, target, progress)
    ended_after = time.monotonic() - failed_at[0]
    assert ended_after < 20, f"the dump ended {ended_after:.0f}s after its report failed"
    listed = await s3.list_objects_v2(Bucket=bucket, Prefix=layout.root)
    assert listed.get("KeyCount", 0) == 0, "an aborted dump left an object"
