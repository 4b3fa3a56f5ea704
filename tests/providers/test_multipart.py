"""MultipartWriter against the stack's SeaweedFS: any write pattern gives the same object and checksum."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest

from lc2backup.providers.local.dumping import PgDumper
from lc2backup.providers.s3 import MIB, MultipartWriter


@pytest.mark.parametrize(
    ("total", "chunk", "parts"),
    [(0, 1, 0), (1234, 100, 0), (5 * MIB, MIB, 1), (17 * MIB + 3, MIB + 7, 4), (11 * MIB, 3 * MIB, 3)],
)
async def test_object_equals_what_was_written(
    s3: Any, buckets: tuple[str, str], total: int, chunk: int, parts: int
) -> None:
    _, bucket = buckets
    data = random.Random(total).randbytes(total)
    writer = MultipartWriter(s3, bucket, "dump", part_size=5 * MIB)
    for start in range(0, total, chunk):
        await writer.write(data[start : start + chunk])
    await writer.close()
    stored = await s3.get_object(Bucket=bucket, Key="dump")
    assert await stored["Body"].read() == data
    assert writer.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert writer.size == total
    assert len(writer._parts) == parts  # 0: one plain PUT


@pytest.mark.parametrize("total", [1234, 11 * MIB], ids=["single-put", "multipart"])
async def test_a_finished_dump_without_its_sidecar_is_recognised_and_its_sidecar_written(
    s3: Any, buckets: tuple[str, str], total: int
) -> None:
    """A crash after the dump's upload completed but before its ``.sha256`` (crash point ``dump:uploaded``):
    the redelivery finds the finished dump by its object and writes the missing sidecar from the stored bytes."""
    _, bucket = buckets
    data = random.Random(total).randbytes(total)
    key = "backups/b1/database/lportal.dump"
    metadata = {"lc2-backup-id": "b1", "lc2-format": "postgresql-custom", "lc2-engine-version": "16.4"}
    dumper = PgDumper()
    assert await dumper.existing(s3, bucket, key, "b1") is None  # nothing there: dump
    writer = MultipartWriter(s3, bucket, key, part_size=5 * MIB, metadata=metadata)
    await writer.write(data)
    await writer.close()

    assert await dumper.existing(s3, bucket, key, "another-backup") is None  # not this backup's dump
    found = await dumper.existing(s3, bucket, key, "b1")
    sha = hashlib.sha256(data).hexdigest()
    assert found is not None and (found.done, found.size_bytes, found.sha256) == (True, total, sha)
    assert found.engine_version == "16.4"
    sidecar = await s3.get_object(Bucket=bucket, Key=f"{key}.sha256")
    assert (await sidecar["Body"].read()).decode() == f"{sha}  lportal.dump\n"  # sha256sum -c format
    assert await dumper.existing(s3, bucket, key, "b1") == found  # with its sidecar now: the same answer
