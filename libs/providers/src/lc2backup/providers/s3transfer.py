"""Server-side copy of a document library between S3 buckets: list, filter, copy in parallel, manifest.

Provider-neutral: the local provider (SeaweedFS, MinIO) and the AWS provider (S3 itself) both copy with
it, each with its own client and limits. No object bytes pass through the process (CopyObject /
UploadPartCopy). Memory is bounded: the listing feeds a bounded queue, and the manifest (one JSON line per
copied object) is streamed by a multipart upload. Progress is reported every ``progress_interval`` seconds
and once at the end. While it copies, the copier asks whether its branch still runs (``still_running``, a
look at the backup's events) between two listing pages and every ``cancel_check_interval`` seconds: a branch
cancelled because the other one failed stops within that interval, after the copies already in flight.

With ``direct`` (AWS and S3-compatible stores alike), listing and CopyObject take the lean path of
``s3direct`` (aiohttp, botocore's SigV4 signer and credential chain): botocore's per-request CPU would
otherwise cap the copy rate on a small machine (B4). Everything else — multipart copies above the
single-copy limit, HEAD, the manifest — stays on the botocore client; behaviour and errors are the same on
both paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lc2backup.domain import TransferCounters, generated_prefixes, is_generated, unsafe_key_reason
from lc2backup.eventing import crash_point
from lc2backup.providers.base import BackupJob, BranchCheck, TransferProgress, TransferStatus
from lc2backup.providers.errors import PermanentProviderError, ProviderError, TransientProviderError
from lc2backup.providers.s3 import (
    MIB,
    SINGLE_COPY_LIMIT,
    MultipartWriter,
    S3Client,
    copy_server_side,
    error_code,
    translate,
)
from lc2backup.providers.s3direct import DirectEndpoint, DirectS3, Listed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Item:
    key: str
    size: int
    etag: str


class _Counting:
    def __init__(self) -> None:
        self.objects_found = self.objects_copied = self.bytes_copied = 0
        self.objects_excluded = self.bytes_excluded = self.objects_vanished = 0
        self.listing_complete = False

    def snapshot(self) -> TransferCounters:
        return TransferCounters(
            objects_found=self.objects_found,
            objects_copied=self.objects_copied,
            bytes_copied=self.bytes_copied,
            objects_excluded=self.objects_excluded,
            bytes_excluded=self.bytes_excluded,
            objects_vanished=self.objects_vanished,
            listing_complete=self.listing_complete,
        )


async def discover_company_ids(client: S3Client, bucket: str, prefix: str) -> list[str]:
    """Top-level folders that look like Liferay company ids (a metadata-only listing)."""
    ids: set[str] = set()
    try:
        paginator = client.get_paginator("list_objects_v2")
        for area in ("", "_deleted/", "_new/"):
            async for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{area}", Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(prefix) + len(area) :].rstrip("/")
                    if name.isdigit():
                        ids.add(name)
    except Exception as exc:
        raise translate(exc, f"list s3://{bucket}/{prefix}", bucket) from exc
    return sorted(ids)


class S3Copier:
    def __init__(
        self,
        *,
        workers: int = 64,
        progress_interval: float = 2.0,
        cancel_check_interval: float = 1.0,
        manifest_part_size: int = 8 * MIB,
        single_copy_limit: int = SINGLE_COPY_LIMIT,
        multipart_part_size: int = 512 * MIB,
        object_attempts: int = 4,
        direct: DirectEndpoint | None = None,
    ) -> None:
        self._direct = direct
        self._workers = workers
        self._progress_interval = progress_interval
        self._cancel_check_interval = cancel_check_interval
        self._manifest_part_size = manifest_part_size
        self._single_copy_limit = single_copy_limit
        self._multipart_part_size = multipart_part_size
        self._object_attempts = object_attempts

    async def excluded_prefixes(self, client: S3Client, job: BackupJob) -> list[str]:
        dl = job.spec.document_library
        if not dl.exclude_generated_files:
            return []
        return generated_prefixes(
            dl.source_prefix, await discover_company_ids(client, dl.source_bucket, dl.source_prefix)
        )

    async def copy(
        self,
        client: S3Client,
        job: BackupJob,
        progress: TransferProgress,
        still_running: BranchCheck | None = None,
    ) -> TransferStatus:
        dl = job.spec.document_library
        counts = _Counting()
        queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=self._workers * 4)
        manifest = MultipartWriter(
            client,
            job.layout.bucket,
            job.layout.manifest_key,
            part_size=self._manifest_part_size,
            content_type="application/x-ndjson",
        )
        manifest_lock = asyncio.Lock()
        http: DirectS3 | None = None

        async def lister() -> None:
            try:
                async for page in _listing(client, http, dl.source_bucket, dl.source_prefix, still_running):
                    for obj in page:
                        key, size = obj.key, obj.size
                        counts.objects_found += 1
                        unsafe = (
                            unsafe_key_reason(key[len(dl.source_prefix) :])
                            if key.startswith(dl.source_prefix)
                            else "outside the source prefix"
                        )
                        if unsafe is not None:  # never copied outside documentlibrary/ (layout.unsafe_key_reason)
                            raise PermanentProviderError(f"refusing to copy source object {key[:300]!r}: {unsafe}")
                        if dl.exclude_generated_files and is_generated(key[len(dl.source_prefix) :]):
                            counts.objects_excluded += 1
                            counts.bytes_excluded += size
                            continue
                        await queue.put(_Item(key, size, obj.etag))
            except ProviderError:
                raise
            except Exception as exc:
                raise translate(exc, f"list s3://{dl.source_bucket}/{dl.source_prefix}", dl.source_bucket) from exc
            counts.listing_complete = True
            for _ in range(self._workers):
                await queue.put(None)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                relative = item.key[len(dl.source_prefix) :]
                etag = await self._copy_one(client, http, job, item, job.layout.document_library_prefix + relative)
                if etag is None:
                    counts.objects_vanished += 1
                    continue
                counts.objects_copied += 1
                counts.bytes_copied += item.size
                line = json.dumps({"key": relative, "size": item.size, "etag": etag.strip('"')}) + "\n"
                async with manifest_lock:
                    await manifest.write(line.encode())
                crash_point("copy:object")  # test-only (lc2backup.eventing.crashpoints): SIGKILL mid-copy

        copied = asyncio.Event()

        started = time.monotonic()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._direct is not None:
                    http = await stack.enter_async_context(DirectS3(self._direct, self._workers))
                await self._run(lister(), worker, copied, progress, counts, still_running)
            await manifest.close()
        except BaseException as exc:
            await manifest.abort()
            raise _first_cause(exc) from None
        final = counts.snapshot()
        await progress(final)
        log.info(
            "copied %d objects (%d bytes), excluded %d, in %.1fs",
            final.objects_copied,
            final.bytes_copied,
            final.objects_excluded,
            time.monotonic() - started,
        )
        return TransferStatus(done=True, counters=final, manifest_location=job.layout.uri(job.layout.manifest_key))

    async def _run(
        self,
        lister: Coroutine[Any, Any, None],
        worker: Callable[[], Coroutine[Any, Any, None]],
        copied: asyncio.Event,
        progress: TransferProgress,
        counts: _Counting,
        still_running: BranchCheck | None,
    ) -> None:
        """The lister, the workers, the progress reporter and the cancellation check, until the workers are
        done (or one of them fails: a check that raises ``OperationAborted`` stops the others)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(lister)
            workers = [group.create_task(worker()) for _ in range(self._workers)]
            group.create_task(_report_until(copied, self._progress_interval, progress, counts))
            if still_running is not None:
                group.create_task(_check_until(copied, self._cancel_check_interval, still_running))
            await asyncio.gather(*workers)
            copied.set()

    async def _copy_one(
        self, client: S3Client, http: DirectS3 | None, job: BackupJob, item: _Item, dst_key: str
    ) -> str | None:
        """Copy one object; None if it vanished from the source. Retries transient failures per object."""
        dl = job.spec.document_library
        etag = item.etag
        for attempt in range(1, self._object_attempts + 1):
            try:
                if http is not None and item.size <= self._single_copy_limit:
                    return await _direct_copy(http, dl.source_bucket, item.key, job.layout.bucket, dst_key, etag)
                result = await copy_server_side(
                    client,
                    src_bucket=dl.source_bucket,
                    src_key=item.key,
                    dst_bucket=job.layout.bucket,
                    dst_key=dst_key,
                    size=item.size,
                    etag=etag,
                    single_copy_limit=self._single_copy_limit,
                    part_size=self._multipart_part_size,
                )
                return result.etag
            except PermanentProviderError as exc:
                cause = exc.__cause__
                code = error_code(cause) if isinstance(cause, ClientError) else ""
                if code in ("NoSuchKey", "404"):
                    return None
                if code in ("PreconditionFailed", "412"):  # changed since listing: copy the current version
                    current = await self._current_etag(client, dl.source_bucket, item.key)
                    if current is None:
                        return None
                    etag = current
                    continue
                raise
            except TransientProviderError:
                if attempt == self._object_attempts:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise TransientProviderError(f"copy of {item.key} kept changing at the source")

    @staticmethod
    async def _current_etag(client: S3Client, bucket: str, key: str) -> str | None:
        try:
            head = await client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc
        return str(head["ETag"])


async def _direct_copy(http: DirectS3, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, etag: str) -> str:
    try:
        return await http.copy_object(src_bucket, src_key, dst_bucket, dst_key, etag)
    except Exception as exc:
        raise translate(exc, f"copy s3://{src_bucket}/{src_key} -> s3://{dst_bucket}/{dst_key}", src_bucket) from exc


async def _listing(
    client: S3Client, http: DirectS3 | None, bucket: str, prefix: str, still_running: BranchCheck | None
) -> AsyncIterator[list[Listed]]:
    """The source's objects page by page, each after a look at whether the branch still runs (a cancelled
    branch lists no further): the lean path when there is one, else botocore's paginator."""
    pages = http.list_objects(bucket, prefix) if http is not None else _paginated(client, bucket, prefix)
    async for page in pages:
        if still_running is not None:
            await still_running()
        yield page


async def _paginated(client: S3Client, bucket: str, prefix: str) -> AsyncIterator[list[Listed]]:
    paginator = client.get_paginator("list_objects_v2")
    async for raw in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield [Listed(o["Key"], int(o["Size"]), str(o["ETag"])) for o in raw.get("Contents", [])]


async def _report_until(done: asyncio.Event, interval: float, progress: TransferProgress, counts: _Counting) -> None:
    """Report every ``interval`` until ``done``. Stopped by the event, never by cancel(): a cancel landing while
    ``progress`` appends an event can be swallowed below it, and the copy would never return."""
    while not done.is_set():
        try:
            async with asyncio.timeout(interval):
                await done.wait()
        except TimeoutError:
            await progress(counts.snapshot())


async def _check_until(done: asyncio.Event, interval: float, still_running: BranchCheck) -> None:
    """Ask every ``interval`` whether the branch still runs, until ``done`` (stopped like ``_report_until``)."""
    while not done.is_set():
        try:
            async with asyncio.timeout(interval):
                await done.wait()
        except TimeoutError:
            await still_running()


def _first_cause(exc: BaseException) -> BaseException:
    """TaskGroup wraps failures in an ExceptionGroup; surface the first real one (provider errors first)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = list(_leaves(exc))
        for leaf in leaves:
            if isinstance(leaf, ProviderError):
                return leaf
        return leaves[0] if leaves else exc
    return exc


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
