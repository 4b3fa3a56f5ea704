"""MultipartWriter against the stack's SeaweedFS: any write pattern gives the same object and checksum."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest

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
