"""Writes counted by the object store itself, not by our own manifest or events.

On a bucket that keeps every version, each PutObject, CopyObject and CompleteMultipartUpload of a key makes
one more version of it (SeaweedFS and moto both do so), so "written once" is something the server can show.
A bucket that keeps no versions would count every key once whatever happened: ``writes`` refuses to count
on one. The checks built on it have a positive control: a second copy or a second ``metadata.json`` made by
the test itself, directly against the server, must be caught by the same check (tests/e2e/test_idempotency.py,
tests/faults/test_crash_local.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


async def keep_every_version(s3: Any, bucket: str) -> None:
    await s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


async def writes(s3: Any, bucket: str, prefix: str = "") -> Counter[str]:
    """key -> how many times the server stored an object under it (delete markers are not writes).

    Every key that ``list_objects_v2`` shows is counted: SeaweedFS's paginated ``list_object_versions`` skips a
    key that sorts before a folder it has already walked (``documentlibrary.manifest.jsonl`` beside
    ``documentlibrary/``, once there are more than a page of objects), so such a key is counted on its own.
    """
    status = (await s3.get_bucket_versioning(Bucket=bucket)).get("Status")
    assert status == "Enabled", f"bucket {bucket} keeps no versions ({status!r}): writes cannot be counted"
    counts = await _versions(s3, bucket, prefix)
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for key in (obj["Key"] for obj in page.get("Contents", [])):
            if key not in counts:
                counts[key] = (await _versions(s3, bucket, key))[key]
                assert counts[key] >= 1, f"{key} is listed but has no version"
    return counts


async def _versions(s3: Any, bucket: str, prefix: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    async for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            counts[version["Key"]] += 1
    return counts


def rewritten(counts: Mapping[str, int], keys: Iterable[str] | None = None, at_most: int = 1) -> dict[str, int]:
    """The keys (all of ``counts`` by default) written more than ``at_most`` times, with their counts."""
    wanted = counts.keys() if keys is None else keys
    return {key: counts[key] for key in sorted(wanted) if counts.get(key, 0) > at_most}
