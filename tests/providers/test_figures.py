"""Figures of a database against the stack's PostgreSQL, and the dumper writing those of the snapshot it dumps.

The oracles are plain ``count(*)`` queries written here and a ``pg_restore`` of the dump, never take_figures.
To put writes between the figures and pg_dump deterministically, pg_dump is started through a script that waits
for a file the test creates once it has committed them (PgDumper runs whichever pg_dump it is given).
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from botocore.exceptions import ClientError

from lc2backup.devstack import LocalStack
from lc2backup.devstack.postgres import pg_bindir
from lc2backup.domain import BackupLayout, DatabaseFigures, compare_figures
from lc2backup.domain.spec import parse_spec
from lc2backup.domain.state import ExportInfo
from lc2backup.providers.base import BackupJob, ExportStatus
from lc2backup.providers.local.dumping import EXTENSION, FORMAT, DumpTarget, PgDumper
from lc2backup.providers.local.figures import FIGURES_EXTENSION, figures_of
from tests.support import local_spec

ODD = '"Odd ""Schema"."we ird"'
SCHEMA = f"""
CREATE SCHEMA "Odd ""Schema";
CREATE TABLE {ODD} (id int PRIMARY KEY, at timestamptz, ratio float8, blob bytea, span interval, note text);
CREATE TABLE user_ (id int PRIMARY KEY, name text);
CREATE TABLE empty_ (id int);
"""
# figures' key of each table -> how the oracle's queries name it
TABLES = {'Odd "Schema.we ird': ODD, "public.user_": "user_", "public.empty_": "empty_"}
SEEDED = {'Odd "Schema.we ird': 300, "public.user_": 13, "public.empty_": 0}


def rows(order: str) -> str:
    """The same rows whatever ``order`` (ASC or DESC): only where they land in the heap differs."""
    return f"""
INSERT INTO {ODD}
  SELECT g, timestamptz '2024-03-01 12:00:00+00' + g * interval '1 hour 7 seconds', (g / 7.0)::float8,
         decode(md5(g::text), 'hex'), g * interval '1 minute', CASE WHEN g % 5 = 0 THEN NULL ELSE 'row ' || g END
  FROM generate_series(1, 300) g ORDER BY g {order};
INSERT INTO user_ SELECT g, 'user ' || g FROM generate_series(1, 13) g ORDER BY g {order};
"""


async def execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def fetchval(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def counted(dsn: str) -> dict[str, int]:
    """Rows per table, by ``count(*)``."""
    conn = await asyncpg.connect(dsn)
    try:
        return {table: int(await conn.fetchval(f"SELECT count(*) FROM {sql}")) for table, sql in TABLES.items()}
    finally:
        await conn.close()


def row_counts_of(figures: DatabaseFigures) -> dict[str, int]:
    return {table: figure.rows for table, figure in figures.by_table().items()}


async def test_figures_count_each_table_and_sum_its_rows_in_any_order_and_any_session_settings(
    stack: LocalStack, pg_dsn: str, unique: str
) -> None:
    database = f"t_{unique}"
    await execute(pg_dsn, SCHEMA + rows("ASC"))
    taken = await figures_of(pg_dsn, None, database)
    assert taken.database == database
    assert row_counts_of(taken) == await counted(pg_dsn) == SEEDED
    assert taken.by_table()["public.empty_"].checksum == "0"

    # The same rows inserted the other way round, in a database whose sessions render rows differently.
    other_name = f"t_{unique}_other"
    other = stack.postgres.create_database(other_name)
    await execute(
        other,
        f"ALTER DATABASE {other_name} SET TimeZone = 'Asia/Tokyo';"
        f"ALTER DATABASE {other_name} SET DateStyle = 'SQL, DMY';"
        f"ALTER DATABASE {other_name} SET IntervalStyle = 'iso_8601';"
        f"ALTER DATABASE {other_name} SET extra_float_digits = 0;"
        f"ALTER DATABASE {other_name} SET bytea_output = 'escape';",
    )
    await execute(other, SCHEMA + rows("DESC"))
    row_text = f"SELECT t::text FROM {ODD} t WHERE id = 1"
    assert await fetchval(pg_dsn, row_text) != await fetchval(other, row_text)  # the settings would matter
    assert await fetchval(pg_dsn, f"SELECT id FROM {ODD} LIMIT 1") != await fetchval(
        other, f"SELECT id FROM {ODD} LIMIT 1"
    )
    assert (await figures_of(other, None, other_name)).tables == taken.tables

    # One value changed: that table's checksum changes, and only it; changed back (the row now lies elsewhere
    # in the heap), the checksum is the first again.
    before = await fetchval(pg_dsn, "SELECT ctid::text FROM user_ WHERE id = 7")
    await execute(pg_dsn, "UPDATE user_ SET name = 'user 7!' WHERE id = 7")
    changed = await figures_of(pg_dsn, None, database)
    assert compare_figures(taken, changed) == ["table public.user_: row checksum differs (same row count 13)"]
    await execute(pg_dsn, "UPDATE user_ SET name = 'user 7' WHERE id = 7")
    assert await fetchval(pg_dsn, "SELECT ctid::text FROM user_ WHERE id = 7") != before
    assert (await figures_of(pg_dsn, None, database)).tables == taken.tables


async def exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        await s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


async def read(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = await (await s3.get_object(Bucket=bucket, Key=key))["Body"].read()
    return body


def held_pg_dump(tmp_path: Path, gate: Path) -> Path:
    """A pg_dump that starts only once ``gate`` exists."""
    script = tmp_path / "held_pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        f"while [ ! -e {shlex.quote(str(gate))} ]; do sleep 0.01; done\n"
        f'exec {shlex.quote(str(pg_bindir() / "pg_dump"))} "$@"\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.timeout(120)
async def test_a_dump_writes_beside_it_the_figures_of_the_snapshot_it_dumps_which_its_restore_matches(
    stack: LocalStack, pg_dsn: str, s3: Any, buckets: tuple[str, str], unique: str, tmp_path: Path
) -> None:
    _, bucket = buckets
    await execute(pg_dsn, SCHEMA + rows("ASC"))
    backup_id = "0b7e3c1a-5d2f-4e8a-9b6c-7f1d2e3a4b5c"
    spec = parse_spec(local_spec("source", bucket))
    layout = BackupLayout.of(spec, backup_id)
    target = DumpTarget.parse(pg_dsn, None)
    key = layout.database_key(target.database, EXTENSION)
    figures_key = layout.database_key(target.database, FIGURES_EXTENSION)
    assert figures_key == f"{layout.root}database/t_{unique}.figures.json"
    ref = ExportInfo(operation_id=key, location=layout.uri(key), format=FORMAT, restorable=True)
    gate = tmp_path / "go"

    async def write_meanwhile() -> None:
        """Once the figures are stored, and before pg_dump starts, commit rows added and rows deleted."""
        async with asyncio.timeout(60):
            while not await exists(s3, bucket, figures_key):
                await asyncio.sleep(0.01)
        assert not await exists(s3, bucket, key)
        await execute(
            pg_dsn,
            f"INSERT INTO user_ SELECT g, 'late ' || g FROM generate_series(100, 104) g; DELETE FROM {ODD} WHERE id <= 10",
        )
        gate.touch()

    async def progress(_: ExportStatus) -> None:
        pass

    dumper = PgDumper(pg_dump=str(held_pg_dump(tmp_path, gate)), compress=0, progress_interval=0)
    job = BackupJob(backup_id, spec, layout)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(write_meanwhile())
        status = await dumper.dump(s3, job, ref, target, progress)
    assert status.done

    # The writes landed in the source, after the figures: they are not in them.
    assert await counted(pg_dsn) == {**SEEDED, "public.user_": 18, 'Odd "Schema.we ird': 290}
    head = await s3.head_object(Bucket=bucket, Key=figures_key)
    assert head["ContentType"] == "application/json"
    stored = DatabaseFigures.model_validate_json(await read(s3, bucket, figures_key))
    assert stored.database == target.database
    assert row_counts_of(stored) == SEEDED

    # The dump holds the same snapshot: restored, it has the rows the figures count, and the same checksums.
    restored_name = f"t_{unique}_restored"
    restored = stack.postgres.create_database(restored_name)
    dump = tmp_path / "dump"
    dump.write_bytes(await read(s3, bucket, key))
    restore = [str(pg_bindir() / "pg_restore"), "--exit-on-error", "--no-owner", "-d", restored, str(dump)]
    done = subprocess.run(restore, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert await counted(restored) == row_counts_of(stored)
    assert compare_figures(stored, await figures_of(restored, None, restored_name)) == []
    assert compare_figures(stored, await figures_of(pg_dsn, None, target.database)) == [
        'table Odd "Schema.we ird: 290 rows restored, 300 at backup time',
        "table public.user_: 18 rows restored, 13 at backup time",
    ]  # positive control: the source, changed since, no longer matches

    # A redelivery finds the dump finished: it neither dumps nor measures again.
    figures_bytes = await read(s3, bucket, figures_key)
    again = await dumper.dump(s3, job, ref, target, progress)
    assert (again.done, again.sha256) == (True, status.sha256)
    assert await read(s3, bucket, figures_key) == figures_bytes
