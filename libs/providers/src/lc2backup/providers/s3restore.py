"""A document library restored from a backup bucket on S3, and checked: one implementation for every provider
whose backups live in S3 (the local provider on an S3-compatible store, the aws provider on S3 itself).

Every object of the backup's manifest is copied server-side (``CopyObject``, ``UploadPartCopy`` above the
single-copy limit, pinned to the manifest's ETag) to ``<target prefix><key>``; objects already there with the
manifest's size and ETag are not copied again, so a restore repeated after a crash copies only what is missing.
Memory is one manifest (a line per object, as the backup wrote it). The same reads check ``metadata.json``
against the plan, the target prefix before anything is written, and a restored library afterwards; what is
wrong is judged by ``restore_checks``, as for every provider.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.restoring import DocumentLibraryPlan, RestorePlan
from lc2backup.providers.errors import ObjectNotFound, PermanentProviderError
from lc2backup.providers.restore_checks import (
    ArtefactCheck,
    ManifestLine,
    check_metadata,
    compare_library,
    parse_manifest,
)
from lc2backup.providers.restoring import LibraryRestored, Progress
from lc2backup.providers.s3 import S3Client, copy_server_side, error_code, translate
from lc2backup.runtime.crashpoints import crash_point


def split_location(location: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    parts = urlsplit(location)
    if parts.scheme != "s3" or not parts.netloc:
        raise PermanentProviderError(f"{location} is not an s3:// location")
    return parts.netloc, parts.path.lstrip("/")


class S3Library:
    """The S3 side of a restore: ``metadata.json``, the document library, the verdict."""

    def __init__(self, client: S3Client, *, copy_workers: int = 32, progress_interval: float = 2.0) -> None:
        self._client = client
        self._workers = copy_workers
        self._interval = progress_interval

    async def read(self, bucket: str, key: str) -> bytes:
        try:
            response = await self._client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as stream:
                return bytes(await stream.read())
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc

    # validation

    async def check_metadata(
        self, plan: RestorePlan, artefact: ArtefactCheck, problems: list[str], checks: list[str]
    ) -> None:
        """``metadata.json`` names the backup, lists the database artefact (``artefact`` says how) and the object
        count the log recorded."""
        assert plan.metadata_location is not None
        where = plan.metadata_location
        bucket, key = split_location(where)
        try:
            body: bytes | None = await self.read(bucket, key)
        except ObjectNotFound:
            body = None
        found = check_metadata(body, where, plan, artefact)
        problems += found
        if not found:
            checks.append(f"{where} matches the backup's log")

    async def check_target(self, plan: DocumentLibraryPlan, problems: list[str], checks: list[str]) -> None:
        """The target bucket exists and the prefix is empty (or ``merge``)."""
        where = f"s3://{plan.target_bucket}/{plan.target_prefix}"
        try:
            await self._client.head_bucket(Bucket=plan.target_bucket)
            listed = await self._client.list_objects_v2(Bucket=plan.target_bucket, Prefix=plan.target_prefix, MaxKeys=1)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                problems.append(f"bucket {plan.target_bucket} does not exist: create it first")
                return
            raise translate(exc, where, plan.target_bucket) from exc
        first = listed.get("Contents") or []
        if first and not plan.merge:
            problems.append(f"{where} is not empty (holds {first[0]['Key']}): choose an empty prefix, or merge: true")
        else:
            checks.append(f"{where} is {'empty' if not first else 'merged into (merge: true)'}")

    # the restore

    async def manifest(self, plan: DocumentLibraryPlan) -> list[ManifestLine]:
        if plan.manifest_key is None:
            raise PermanentProviderError(f"the backup recorded no manifest under s3://{plan.source_bucket}")
        body = await self.read(plan.source_bucket, plan.manifest_key)
        return parse_manifest(body, f"s3://{plan.source_bucket}/{plan.manifest_key}")

    async def listing(self, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
        """key (without ``prefix``) -> (size, ETag)."""
        found: dict[str, tuple[int, str]] = {}
        try:
            async for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(prefix) :]] = (int(obj["Size"]), str(obj["ETag"]).strip('"'))
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{prefix}", bucket) from exc
        return found

    async def restore(self, plan: DocumentLibraryPlan, progress: Progress) -> LibraryRestored:
        manifest = await self.manifest(plan)
        present = await self.listing(plan.target_bucket, plan.target_prefix)
        todo = [line for line in manifest if present.get(line.key) != (line.size, line.etag)]
        done = len(manifest) - len(todo)
        done_bytes = sum(line.size for line in manifest) - sum(line.size for line in todo)
        queue: asyncio.Queue[ManifestLine] = asyncio.Queue()
        for line in todo:
            queue.put_nowait(line)
        last = time.monotonic()

        async def worker() -> None:
            nonlocal done, done_bytes, last
            while not queue.empty():
                line = queue.get_nowait()
                source = f"{plan.source_prefix}{line.key}"
                try:
                    copied = await copy_server_side(
                        self._client,
                        src_bucket=plan.source_bucket,
                        src_key=source,
                        dst_bucket=plan.target_bucket,
                        dst_key=f"{plan.target_prefix}{line.key}",
                        size=line.size,
                        etag=line.etag,
                    )
                except ObjectNotFound as exc:
                    raise PermanentProviderError(
                        f"object {line.key} of the backup is missing: s3://{plan.source_bucket}/{source} is listed"
                        " in the manifest but not in the bucket"
                    ) from exc
                if not copied.multipart and copied.etag.strip('"') != line.etag:
                    raise PermanentProviderError(
                        f"object {line.key} restored with ETag {copied.etag.strip(chr(34))}, the manifest says"
                        f" {line.etag}"
                    )
                crash_point("restore:object")
                done += 1
                done_bytes += line.size
                if time.monotonic() - last >= self._interval:
                    last = time.monotonic()
                    await progress(done, done_bytes)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._workers, len(todo))):
                group.create_task(worker())
        return LibraryRestored(objects=len(manifest), bytes=sum(line.size for line in manifest), copied=len(todo))

    # verification

    async def verify(
        self, plan: DocumentLibraryPlan, summary: VerificationSummary, findings: list[str], checks: list[str]
    ) -> VerificationSummary:
        """Every manifest object present with its size, a sample of ETags equal, nothing extra (unless merged)."""
        manifest = await self.manifest(plan)
        present = await self.listing(plan.target_bucket, plan.target_prefix)

        def differs(line: ManifestLine) -> str | None:
            etag = present[line.key][1]
            if etag != line.etag and "-" not in line.etag:  # a multipart ETag depends on the part size
                return f"object {line.key} has ETag {etag}, {line.etag} in the manifest"
            return None

        return compare_library(
            manifest,
            {key: size for key, (size, _) in present.items()},
            f"s3://{plan.target_bucket}/{plan.target_prefix}",
            merge=plan.merge,
            differs=differs,
            sampled_what="ETags equal the manifest's",
            summary=summary,
            findings=findings,
            checks=checks,
        )

    async def write_verdict(self, restore_id: str, plan: RestorePlan, body: bytes) -> str:
        """``verifications/<restoreId>.json`` in the backup's folder, next to ``metadata.json``."""
        assert plan.metadata_location is not None
        bucket, key = split_location(plan.metadata_location)
        folder = key.rsplit("/", 1)[0]
        target = f"{folder}/verifications/{restore_id}.json"
        try:
            await self._client.put_object(Bucket=bucket, Key=target, Body=body, ContentType="application/json")
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{target}", bucket) from exc
        return f"s3://{bucket}/{target}"

    async def remove(self, plan: DocumentLibraryPlan) -> str:
        """Delete every object under the (scratch) target prefix; what was removed."""
        keys = list(await self.listing(plan.target_bucket, plan.target_prefix))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": f"{plan.target_prefix}{k}"} for k in keys[start : start + 1000]]
            try:
                await self._client.delete_objects(Bucket=plan.target_bucket, Delete={"Objects": batch})
            except Exception as exc:
                raise translate(exc, f"s3://{plan.target_bucket}/{plan.target_prefix}") from exc
        return f"{len(keys)} objects under s3://{plan.target_bucket}/{plan.target_prefix}"
