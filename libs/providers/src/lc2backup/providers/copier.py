"""Server-side copy of a document library between S3 buckets: list, filter, copy in parallel, manifest.

Provider-neutral: the local provider (SeaweedFS, MinIO) and the AWS provider (S3 itself) both copy with
it, each with its own client and limits. No object bytes pass through the process (CopyObject /
UploadPartCopy). While it copies, the copier asks whether its branch still runs (``still_running``, a look
at the backup's events) between two listing pages and every ``cancel_check_interval`` seconds: a branch
cancelled because the other one failed stops within that interval, after the copies already in flight.

A resumable job. One call copies one slice of about ``slice_seconds`` and returns "not done"; the next call
goes on from the position the last one recorded (``TransferPosition``), also after a SIGKILL. Objects are
listed in key order and copied by many workers, so they finish out of order: the position is a low-water
mark — every object listed at or before ``after_key`` is done and the manifest line of each copied one is in
a manifest part already written. Every ``progress_interval`` seconds (never per object) the lines below the
mark are written as one more part (``documentlibrary.manifest.parts/<n>.jsonl``, a PUT each, in listing
order) and then the position is recorded through ``progress``. A resumed copy lists after the mark, so it
neither loses nor repeats a manifest line; the objects it copies again are at most those that finished after
the last record (one progress interval plus the in-flight window). A part written just before a crash, its
position not yet recorded, carries that position in its own metadata and is adopted, not rewritten. Once
the listing is done and every part written, the parts are concatenated into
``documentlibrary.manifest.jsonl`` (our own small file: it streams through the process), unless a crashed
run already completed it.

Memory is bounded: the listing feeds a bounded queue, and the window between the mark and the newest listed
object is bounded by ``window``.

With ``direct`` (AWS and S3-compatible stores alike), listing and CopyObject take the lean path of
``s3direct`` (aiohttp, botocore's SigV4 signer and credential chain): botocore's per-request CPU would
otherwise cap the copy rate on a small machine (B4). Everything else — multipart copies above the
single-copy limit, HEAD, the manifest parts — stays on the botocore client; behaviour and errors are the same
on both paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from lc2backup.domain import (
    DocumentLibrarySpec,
    TransferCounters,
    TransferPosition,
    generated_prefixes,
    is_generated,
    unsafe_key_reason,
)
from lc2backup.providers.base import COPIER_COUNTERS, BackupJob, BranchCheck, TransferProgress, TransferStatus
from lc2backup.providers.errors import (
    ObjectNotFound,
    PermanentProviderError,
    ProviderError,
    SourceChanged,
    TransientProviderError,
)
from lc2backup.providers.s3 import (
    MIB,
    SINGLE_COPY_LIMIT,
    MultipartWriter,
    S3Client,
    copy_server_side,
    translate,
)
from lc2backup.providers.s3direct import DirectEndpoint, DirectS3, Listed
from lc2backup.runtime.crashpoints import crash_point

log = logging.getLogger(__name__)


POSITION_METADATA = "lc2-position"  # x-amz-meta-lc2-position on a manifest part: the position after it
_METADATA_LIMIT = 1800  # S3 allows 2 KB of user metadata; a longer position is simply not carried


@dataclass(frozen=True)
class _Item:
    key: str
    size: int
    etag: str


Outcome = Literal["copied", "excluded", "vanished"]


@dataclass
class _Slot:
    """One listed object, in listing order, until the mark passes it."""

    key: str
    size: int
    outcome: Outcome | None = None
    line: bytes = b""


_Queue = asyncio.Queue[tuple[_Item, _Slot] | None]


@dataclass
class _Mark:
    """The low-water mark: the counters, manifest lines and key of the objects done in listing order."""

    counters: TransferCounters
    position: TransferPosition
    lines: list[bytes] = field(default_factory=list)  # below the mark, not yet in a part
    slots: deque[_Slot] = field(default_factory=deque)  # listed, at or after the mark
    moved: asyncio.Event = field(default_factory=asyncio.Event)

    def advance(self) -> None:
        c = self.counters
        found, copied, bytes_copied = c.objects_found or 0, c.objects_copied or 0, c.bytes_copied or 0
        excluded, bytes_excluded, vanished = c.objects_excluded or 0, c.bytes_excluded or 0, c.objects_vanished or 0
        key = self.position.after_key
        while self.slots and self.slots[0].outcome is not None:
            slot = self.slots.popleft()
            found += 1
            key = slot.key
            if slot.outcome == "copied":
                copied += 1
                bytes_copied += slot.size
                self.lines.append(slot.line)
            elif slot.outcome == "excluded":
                excluded += 1
                bytes_excluded += slot.size
            else:
                vanished += 1
        if key == self.position.after_key:
            return
        self.counters = c.model_copy(
            update={
                "objects_found": found,
                "objects_copied": copied,
                "bytes_copied": bytes_copied,
                "objects_excluded": excluded,
                "bytes_excluded": bytes_excluded,
                "objects_vanished": vanished,
            }
        )
        self.position = self.position.model_copy(update={"after_key": key})
        self.moved.set()


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
        window: int = 10_000,
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
        self._window = max(window, workers * 4)

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
        *,
        resume: TransferStatus | None = None,
        slice_seconds: float | None = None,
    ) -> TransferStatus:
        """Copy one slice (the whole copy when ``slice_seconds`` is None), starting at ``resume``'s position."""
        counters, position = TransferCounters.zero(COPIER_COUNTERS), TransferPosition()
        if resume is not None and resume.position is not None:
            counters, position = resume.counters, resume.position
        counters, position = await self._adopt(client, job, counters, position)
        mark = _Mark(counters, position)
        if not counters.listing_complete:
            started = time.monotonic()
            until = None if slice_seconds is None else started + slice_seconds
            await self._slice(client, job, mark, progress, still_running, until)
            log.info(
                "copy of %s: %d objects copied so far (%d bytes), %d excluded; slice of %.1fs",
                job.backup_id,
                mark.counters.objects_copied,
                mark.counters.bytes_copied,
                mark.counters.objects_excluded,
                time.monotonic() - started,
            )
            if not mark.counters.listing_complete:
                return TransferStatus(done=False, counters=mark.counters, position=mark.position)
        location = await self._compose(client, job, mark.position)
        return TransferStatus(done=True, counters=mark.counters, manifest_location=location, position=mark.position)

    async def _adopt(
        self, client: S3Client, job: BackupJob, counters: TransferCounters, position: TransferPosition
    ) -> tuple[TransferCounters, TransferPosition]:
        """The parts written after the recorded position by a run that crashed before recording them: their
        own metadata says where the copy stood after each (so they are neither rewritten nor lost)."""
        while True:
            key = job.layout.manifest_part_key(position.manifest_parts + 1)
            try:
                head = await client.head_object(Bucket=job.layout.bucket, Key=key)
            except Exception as exc:
                error = translate(exc, job.layout.uri(key), job.layout.bucket)
                if isinstance(error, ObjectNotFound):
                    return counters, position
                raise error from exc
            carried = head.get("Metadata", {}).get(POSITION_METADATA)
            if carried is None:
                return counters, position  # too long to carry: rewritten by the resumed run
            doc = json.loads(carried)
            counters = TransferCounters.model_validate(doc["counters"])
            position = TransferPosition.model_validate(doc["position"])
            log.info("copy of %s: adopted manifest part %s written before a crash", job.backup_id, key)

    async def _slice(
        self,
        client: S3Client,
        job: BackupJob,
        mark: _Mark,
        progress: TransferProgress,
        still_running: BranchCheck | None,
        until: float | None,
    ) -> None:
        dl = job.spec.document_library
        queue: _Queue = asyncio.Queue(maxsize=self._workers * 4)
        http: DirectS3 | None = None

        async def worker() -> None:
            while (entry := await queue.get()) is not None:
                item, slot = entry
                relative = item.key[len(dl.source_prefix) :]
                etag = await self._copy_one(client, http, job, item, job.layout.document_library_prefix + relative)
                if etag is None:
                    slot.outcome = "vanished"
                else:
                    line = json.dumps({"key": relative, "size": item.size, "etag": etag.strip('"')}) + "\n"
                    slot.line, slot.outcome = line.encode(), "copied"
                mark.advance()
                crash_point("copy:object")  # test-only (lc2backup.runtime.crashpoints): SIGKILL mid-copy

        async def checkpoint() -> None:
            await self._checkpoint(client, job, mark, progress)

        copied = asyncio.Event()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._direct is not None:
                    http = await stack.enter_async_context(DirectS3(self._direct, self._workers))
                listed = self._lister(client, http, job, mark, queue, still_running, until)
                listed_all = await self._run(listed, worker, copied, checkpoint, still_running)
        except BaseException as exc:
            raise _first_cause(exc) from None
        if listed_all:
            mark.counters = mark.counters.model_copy(update={"listing_complete": True})
        await checkpoint()

    async def _lister(
        self,
        client: S3Client,
        http: DirectS3 | None,
        job: BackupJob,
        mark: _Mark,
        queue: _Queue,
        still_running: BranchCheck | None,
        until: float | None,
    ) -> bool:
        """Feed the workers from the listing after the mark until the slice's time is up; True if it listed all."""
        dl = job.spec.document_library
        dispatched, listed_all = 0, False  # at least one object per slice: a copy always moves on
        try:
            async for page in _listing(client, http, dl.source_bucket, dl.source_prefix, mark.position.after_key):
                if still_running is not None:
                    await still_running()
                if await self._feed(page, dl, mark, queue, until, dispatched):
                    break
                dispatched += len(page)
            else:
                listed_all = True
        except ProviderError:
            raise
        except Exception as exc:
            raise translate(exc, f"list s3://{dl.source_bucket}/{dl.source_prefix}", dl.source_bucket) from exc
        for _ in range(self._workers):  # not on failure: the task group cancels the workers then
            await queue.put(None)
        return listed_all

    async def _feed(
        self,
        page: list[Listed],
        dl: DocumentLibrarySpec,
        mark: _Mark,
        queue: _Queue,
        until: float | None,
        dispatched: int,
    ) -> bool:
        """Dispatch one listing page; True if the slice's time ran out before its end."""
        for obj in page:
            if until is not None and dispatched and time.monotonic() >= until:
                return True
            while len(mark.slots) >= self._window:
                mark.moved.clear()
                await mark.moved.wait()
            await self._dispatch(obj, dl.source_prefix, dl.exclude_generated_files, mark, queue)
            dispatched += 1
        return False

    @staticmethod
    async def _dispatch(obj: Listed, prefix: str, exclude_generated: bool, mark: _Mark, queue: _Queue) -> None:
        key = obj.key
        relative = key[len(prefix) :]
        unsafe = unsafe_key_reason(relative) if key.startswith(prefix) else "outside the source prefix"
        if unsafe is not None:  # never copied outside documentlibrary/ (layout.unsafe_key_reason)
            raise PermanentProviderError(f"refusing to copy source object {key[:300]!r}: {unsafe}")
        slot = _Slot(key, obj.size)
        mark.slots.append(slot)
        if exclude_generated and is_generated(relative):
            slot.outcome = "excluded"
            mark.advance()
            return
        await queue.put((_Item(key, obj.size, obj.etag), slot))

    async def _checkpoint(self, client: S3Client, job: BackupJob, mark: _Mark, progress: TransferProgress) -> None:
        """Write the lines below the mark as the next manifest part, then record the position after it."""
        counters, position, lines = mark.counters, mark.position, mark.lines
        mark.lines = []
        if lines:
            body = b"".join(lines)
            position = position.model_copy(
                update={
                    "manifest_parts": position.manifest_parts + 1,
                    "manifest_bytes": position.manifest_bytes + len(body),
                }
            )
            await self._put_part(client, job, position, counters, body)
            crash_point("copy:manifest-part")  # test-only: a part written, its position not yet recorded
            mark.position = mark.position.model_copy(
                update={"manifest_parts": position.manifest_parts, "manifest_bytes": position.manifest_bytes}
            )
        await progress(counters, position)
        crash_point("copy:position")  # test-only: a position recorded

    async def _put_part(
        self, client: S3Client, job: BackupJob, position: TransferPosition, counters: TransferCounters, body: bytes
    ) -> None:
        key = job.layout.manifest_part_key(position.manifest_parts)
        carried = json.dumps(
            {"position": position.model_dump(mode="json"), "counters": counters.model_dump(mode="json")}
        )
        metadata = {POSITION_METADATA: carried} if len(carried) <= _METADATA_LIMIT and carried.isascii() else {}
        try:
            await client.put_object(
                Bucket=job.layout.bucket, Key=key, Body=body, ContentType="application/x-ndjson", Metadata=metadata
            )
        except Exception as exc:
            raise translate(exc, job.layout.uri(key), job.layout.bucket) from exc

    async def _compose(self, client: S3Client, job: BackupJob, position: TransferPosition) -> str:
        """The manifest as one file: the parts in order, unless a run that crashed after it already wrote it."""
        layout = job.layout
        location = layout.uri(layout.manifest_key)
        try:
            head = await client.head_object(Bucket=layout.bucket, Key=layout.manifest_key)
            if int(head["ContentLength"]) == position.manifest_bytes:
                return location
        except Exception as exc:
            if not isinstance(translate(exc, location, layout.bucket), ObjectNotFound):
                raise translate(exc, location, layout.bucket) from exc
        manifest = MultipartWriter(
            client,
            layout.bucket,
            layout.manifest_key,
            part_size=self._manifest_part_size,
            content_type="application/x-ndjson",
        )
        try:
            for number in range(1, position.manifest_parts + 1):
                key = layout.manifest_part_key(number)
                try:
                    part = await client.get_object(Bucket=layout.bucket, Key=key)
                    async with part["Body"] as stream:
                        await manifest.write(bytes(await stream.read()))
                except Exception as exc:
                    raise translate(exc, layout.uri(key), layout.bucket) from exc
            if manifest.size != position.manifest_bytes:
                raise PermanentProviderError(
                    f"manifest parts under {layout.uri(layout.manifest_parts_prefix)} hold {manifest.size} bytes,"
                    f" the copy recorded {position.manifest_bytes}: they were changed by someone else"
                )
            await manifest.close()
        except BaseException:
            await manifest.abort()
            raise
        return location

    async def _run(
        self,
        lister: Coroutine[Any, Any, bool],
        worker: Callable[[], Coroutine[Any, Any, None]],
        copied: asyncio.Event,
        checkpoint: Callable[[], Coroutine[Any, Any, None]],
        still_running: BranchCheck | None,
    ) -> bool:
        """The lister, the workers, the checkpoints and the cancellation check, until the workers are done (or
        one of them fails: a check that raises ``OperationAborted`` stops the others). The lister's answer."""
        async with asyncio.TaskGroup() as group:
            listing = group.create_task(lister)
            workers = [group.create_task(worker()) for _ in range(self._workers)]
            group.create_task(_every_until(copied, self._progress_interval, checkpoint))
            if still_running is not None:
                group.create_task(_every_until(copied, self._cancel_check_interval, still_running))
            await asyncio.gather(*workers)
            copied.set()
        return listing.result()

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
            except ObjectNotFound:
                return None
            except SourceChanged:  # changed since listing: copy the current version
                current = await self._current_etag(client, dl.source_bucket, item.key)
                if current is None:
                    return None
                etag = current
            except TransientProviderError:
                if attempt == self._object_attempts:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise TransientProviderError(f"copy of {item.key} kept changing at the source")

    @staticmethod
    async def _current_etag(client: S3Client, bucket: str, key: str) -> str | None:
        try:
            head = await client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            error = translate(exc, f"s3://{bucket}/{key}", bucket)
            if isinstance(error, ObjectNotFound):
                return None
            raise error from exc
        return str(head["ETag"])


async def _direct_copy(http: DirectS3, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, etag: str) -> str:
    try:
        return await http.copy_object(src_bucket, src_key, dst_bucket, dst_key, etag)
    except Exception as exc:
        raise translate(exc, f"copy s3://{src_bucket}/{src_key} -> s3://{dst_bucket}/{dst_key}", src_bucket) from exc


def _listing(
    client: S3Client, http: DirectS3 | None, bucket: str, prefix: str, after: str | None
) -> AsyncIterator[list[Listed]]:
    """The source's objects after ``after``, page by page: the lean path when there is one, else botocore's."""
    return (
        http.list_objects(bucket, prefix, start_after=after)
        if http is not None
        else _paginated(client, bucket, prefix, after)
    )


async def _paginated(client: S3Client, bucket: str, prefix: str, after: str | None) -> AsyncIterator[list[Listed]]:
    paginator = client.get_paginator("list_objects_v2")
    extra = {"StartAfter": after} if after else {}
    async for raw in paginator.paginate(Bucket=bucket, Prefix=prefix, **extra):
        yield [Listed(o["Key"], int(o["Size"]), str(o["ETag"])) for o in raw.get("Contents", [])]


async def _every_until(done: asyncio.Event, interval: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` every ``interval`` until ``done``. Stopped by the event, never by cancel(): a cancel landing
    while ``action`` appends an event can be swallowed below it, and the copy would never return."""
    while not done.is_set():
        try:
            async with asyncio.timeout(interval):
                await done.wait()
        except TimeoutError:
            await action()


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
