"""The Azure document-library branch and metadata.json on Blob Storage.

The copy is Azure's own: ``start_copy_from_url`` of each source blob into the backup container (both containers
in the storage account the spec names, so the service's identity authorises the source too), each copy's status
polled until Azure reports it done, and a copy still pending ``LC2_AZURE__COPY_DEADLINE_SECONDS`` after we first
saw it is aborted and fails the branch. No object byte passes through our process.

A resumable job on the seam, like our S3 copier: blobs are listed in name order (Azure's listing order) and
copied a batch of ``copy_workers`` at a time (``lc2backup.providers.azure.copying``); after each batch every blob up to its last name is done, which is
the position (``TransferPosition.after_key``). Every ``progress_interval_seconds`` the manifest lines of the
blobs done since the last record are written as the next manifest part and then the position is recorded; a
slice ends after ``slice_seconds``. A resumed copy lists after the mark and starts each copy only if its
destination is missing (``IfMissing``): a blob an earlier delivery already copied — or is still copying — is
adopted, never written twice. Generated files (thumbnails, previews, adaptive media) are skipped and counted.
``metadata.json`` is created only if missing (``IfMissing``); a second write gets Azure's 409 and the body there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lc2backup.domain import (
    BackupLayout,
    TransferCounters,
    TransferPosition,
    generated_prefixes,
    is_generated,
    unsafe_key_reason,
)
from lc2backup.domain.events import DocumentLibraryTransferStarted
from lc2backup.domain.layout import source_uri
from lc2backup.domain.liferay import STORE_AREAS
from lc2backup.domain.state import TransferInfo
from lc2backup.providers.azure.clients import AzureClients
from lc2backup.providers.azure.copying import BlobCopier
from lc2backup.providers.azure.errors import AzureCall
from lc2backup.providers.azure.settings import AzureSettings
from lc2backup.providers.base import (
    COPIER_COUNTERS,
    ArtifactStore,
    BackupJob,
    BranchCheck,
    Capabilities,
    PutOnceResult,
    TransferProgress,
    TransferStatus,
)
from lc2backup.providers.errors import ObjectNotFound, PermanentProviderError, SourceChanged
from lc2backup.runtime.crashpoints import crash_point

log = logging.getLogger(__name__)

READER = "the built-in role 'Storage Blob Data Reader' on the source container"
WRITER = "the built-in role 'Storage Blob Data Contributor' on the backup container"


@dataclass(frozen=True)
class _Done:
    """One listed blob's outcome: copied (with its manifest line), excluded or vanished."""

    name: str
    size: int
    outcome: str
    line: bytes = b""


class BlobCopyProvider:
    name = "azure"
    capabilities = Capabilities(runs_here=True, counters=COPIER_COUNTERS)

    def __init__(self, clients: AzureClients, settings: AzureSettings) -> None:
        self._clients = clients
        self._settings = settings

    def _call(self, grant: str, resource: str, fix: str = "") -> AzureCall:
        return AzureCall(grant, resource, fix, self._settings.transient_retry_seconds)

    async def _service(self, job: BackupJob) -> Any:
        account = job.spec.document_library.storage_account
        assert account is not None  # required for provider azure (the spec's rule)
        return await self._clients.blobs(account)

    async def start_transfer(self, job: BackupJob) -> DocumentLibraryTransferStarted:
        dl, layout = job.spec.document_library, job.layout
        service = await self._service(job)
        await self._require(
            service, job, dl.source_bucket, "source container", "spec.documentLibrary.sourceBucket", READER
        )
        await self._require(
            service, job, layout.bucket, "backup container", "spec.documentLibrary.destinationBucket", WRITER
        )
        excluded = (
            generated_prefixes(dl.source_prefix, await self._company_ids(service, job))
            if dl.exclude_generated_files
            else []
        )
        return DocumentLibraryTransferStarted(
            job_id=f"azure-copy-{job.backup_id}",
            method="blob-copy-from-url",
            source=source_uri(job.spec),
            destination=layout.uri(layout.document_library_prefix),
            exclude_generated_files=dl.exclude_generated_files,
            excluded_prefixes=excluded,
        )

    async def _require(self, service: Any, job: BackupJob, container: str, what: str, field: str, grant: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        account = job.spec.document_library.storage_account
        call = self._call(grant, f"{what} {container} of storage account {account}")
        try:
            await service.get_container_client(container).get_container_properties()
        except ResourceNotFoundError as exc:
            raise PermanentProviderError(
                f"{what} {container} does not exist in storage account {account}: create it (LC2 Backup never creates"
                f" containers) or fix {field} / spec.documentLibrary.storageAccount"
            ) from exc
        except Exception as exc:
            raise call.translate(exc) from exc

    async def _company_ids(self, service: Any, job: BackupJob) -> list[str]:
        dl = job.spec.document_library
        container = service.get_container_client(dl.source_bucket)
        ids: set[str] = set()
        try:
            for area in ("", *(f"{a}/" for a in STORE_AREAS)):
                start = f"{dl.source_prefix}{area}"
                async for item in container.walk_blobs(name_starts_with=start, delimiter="/"):
                    name = str(item.name)[len(start) :].rstrip("/")
                    if name.isdigit() and str(item.name).endswith("/"):
                        ids.add(name)
        except Exception as exc:
            raise self._call(READER, f"container {dl.source_bucket}").translate(exc) from exc
        return sorted(ids)

    async def check_transfer(
        self,
        job: BackupJob,
        transfer: TransferInfo,
        progress: TransferProgress,
        still_running: BranchCheck | None = None,
        *,
        resume: TransferStatus | None = None,
        slice_seconds: float = 30.0,
    ) -> TransferStatus:
        counters, position = TransferCounters.zero(COPIER_COUNTERS), TransferPosition()
        if resume is not None and resume.position is not None:
            counters, position = resume.counters, resume.position
        service = await self._service(job)
        if not counters.listing_complete:
            copy = _Slice(self, service, job, progress, still_running, counters, position)
            counters, position = await copy.run(time.monotonic() + slice_seconds)
            if not counters.listing_complete:
                return TransferStatus(done=False, counters=counters, position=position)
        location = await self._compose(service, job, position)
        return TransferStatus(done=True, counters=counters, manifest_location=location, position=position)

    async def _compose(self, service: Any, job: BackupJob, position: TransferPosition) -> str:
        """The manifest as one blob: the parts in order (our own small file), unless it is already complete."""
        from azure.core.exceptions import ResourceNotFoundError

        layout = job.layout
        container = service.get_container_client(layout.bucket)
        call = self._call(WRITER, layout.uri(layout.manifest_key))
        try:
            try:
                props = await container.get_blob_client(layout.manifest_key).get_blob_properties()
                if int(props.size) == position.manifest_bytes:
                    return layout.uri(layout.manifest_key)
            except ResourceNotFoundError:
                pass
            parts = []
            for number in range(1, position.manifest_parts + 1):
                stream = await container.get_blob_client(layout.manifest_part_key(number)).download_blob()
                parts.append(await stream.readall())
            body = b"".join(parts)
            if len(body) != position.manifest_bytes:
                raise PermanentProviderError(
                    f"manifest parts under {layout.uri(layout.manifest_parts_prefix)} hold {len(body)} bytes, the copy"
                    f" recorded {position.manifest_bytes}: they were changed by someone else"
                )
            await container.upload_blob(layout.manifest_key, body, overwrite=True, **_ndjson())
        except PermanentProviderError:
            raise
        except Exception as exc:
            raise call.translate(exc) from exc
        return layout.uri(layout.manifest_key)


def _ndjson() -> dict[str, Any]:
    from azure.storage.blob import ContentSettings

    return {"content_settings": ContentSettings(content_type="application/x-ndjson")}


class _Slice:
    """One slice of a copy: batches of copies from the mark on, a part and a position every progress interval."""

    def __init__(
        self,
        provider: BlobCopyProvider,
        service: Any,
        job: BackupJob,
        progress: TransferProgress,
        still_running: BranchCheck | None,
        counters: TransferCounters,
        position: TransferPosition,
    ) -> None:
        self._p, self._service, self._job = provider, service, job
        self._settings = provider._settings
        self._progress, self._still_running = progress, still_running
        self.counters, self.position = counters, position
        self._lines: list[bytes] = []
        dl = job.spec.document_library
        self._source = service.get_container_client(dl.source_bucket)
        self._backup = service.get_container_client(job.layout.bucket)
        self._source_url = f"{self._source.url.rstrip('/')}/"
        self._copier = BlobCopier(self._settings, WRITER, still_running)

    async def run(self, until: float) -> tuple[TransferCounters, TransferPosition]:
        dl = self._job.spec.document_library
        after = self.position.after_key
        batch: list[Any] = []
        recorded = time.monotonic()
        listed_all = True
        try:
            async for blob in self._source.list_blobs(name_starts_with=dl.source_prefix):
                if after is not None and str(blob.name) <= after:
                    continue  # done before the mark (Azure lists in name order; no start-after parameter)
                batch.append(blob)
                if len(batch) < self._settings.copy_workers:
                    continue
                await self._batch(batch)
                batch = []
                if time.monotonic() - recorded >= self._settings.progress_interval_seconds:
                    await self._checkpoint()
                    recorded = time.monotonic()
                if time.monotonic() >= until:
                    listed_all = False
                    break
        except PermanentProviderError:
            raise
        except Exception as exc:
            if isinstance(exc, ObjectNotFound | SourceChanged):
                raise
            raise self._p._call(READER, f"container {dl.source_bucket} of {dl.storage_account}").translate(exc) from exc
        if batch:
            await self._batch(batch)
        if listed_all:
            self.counters = self.counters.model_copy(update={"listing_complete": True})
        await self._checkpoint()
        return self.counters, self.position

    async def _batch(self, batch: list[Any]) -> None:
        if self._still_running is not None:
            await self._still_running()
        done = await asyncio.gather(*(self._one(blob) for blob in batch))
        c = self.counters
        counts = {name: getattr(c, name) or 0 for name in COPIER_COUNTERS}
        for item in done:
            counts["objects_found"] += 1
            if item.outcome == "copied":
                counts["objects_copied"] += 1
                counts["bytes_copied"] += item.size
                self._lines.append(item.line)
            elif item.outcome == "excluded":
                counts["objects_excluded"] += 1
                counts["bytes_excluded"] += item.size
            else:
                counts["objects_vanished"] += 1
        self.counters = c.model_copy(update=counts)
        self.position = self.position.model_copy(update={"after_key": str(batch[-1].name)})

    async def _one(self, blob: Any) -> _Done:
        dl = self._job.spec.document_library
        name, size = str(blob.name), int(blob.size or 0)
        relative = name[len(dl.source_prefix) :]
        unsafe = unsafe_key_reason(relative) if name.startswith(dl.source_prefix) else "outside the source prefix"
        if unsafe is not None:  # never copied outside documentlibrary/ (layout.unsafe_key_reason)
            raise PermanentProviderError(f"refusing to copy source blob {name[:300]!r}: {unsafe}")
        if dl.exclude_generated_files and is_generated(relative):
            return _Done(name, size, "excluded")
        destination = self._backup.get_blob_client(self._job.layout.document_library_prefix + relative)
        props = await self._copy(name, destination)
        if props is None:
            return _Done(name, size, "vanished")
        line = json.dumps({"key": relative, "size": int(props.size), "etag": str(props.etag).strip('"')}) + "\n"
        crash_point("copy:object")  # test-only (lc2backup.runtime.crashpoints): SIGKILL mid-copy
        return _Done(name, int(props.size), "copied", line.encode())

    async def _copy(self, name: str, destination: Any) -> Any | None:
        """Copy the source blob ``name`` into ``destination`` unless an earlier delivery did (adopted); its
        properties once Azure finished, or None when the source vanished."""
        return await self._copier.copy(self._source_url + urllib.parse.quote(name, safe="/~"), name, destination)

    async def _checkpoint(self) -> None:
        """The lines since the last record as the next manifest part, then the position after it."""
        lines, self._lines = self._lines, []
        if lines:
            body = b"".join(lines)
            layout = self._job.layout
            number = self.position.manifest_parts + 1
            key = layout.manifest_part_key(number)
            try:  # rewritten with the same lines when a crash came before its position was recorded
                await self._backup.upload_blob(key, body, overwrite=True, **_ndjson())
            except Exception as exc:
                raise self._p._call(WRITER, layout.uri(key)).translate(exc) from exc
            crash_point("copy:manifest-part")  # test-only: a part written, its position not yet recorded
            self.position = self.position.model_copy(
                update={"manifest_parts": number, "manifest_bytes": self.position.manifest_bytes + len(body)}
            )
        await self._progress(self.counters, self.position)
        crash_point("copy:position")  # test-only: a position recorded


class BlobArtifactStore:
    name = "azure"

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    async def put_once(self, layout: BackupLayout, key: str, body: bytes, content_type: str) -> PutOnceResult:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        assert layout.account is not None  # required for provider azure (the spec's rule)
        location = layout.uri(key)
        blob = (await self._clients.blobs(layout.account)).get_blob_client(layout.bucket, key)
        call = AzureCall(WRITER, location, "", self._clients.settings.transient_retry_seconds)
        try:
            try:
                await blob.upload_blob(
                    body,
                    match_condition=MatchConditions.IfMissing,
                    content_settings=ContentSettings(content_type=content_type),
                )
            except ResourceExistsError:  # written by an earlier delivery: hand back what is there
                existing = await (await blob.download_blob()).readall()
                return PutOnceResult(created=False, location=location, existing=bytes(existing))
        except Exception as exc:
            raise call.translate(exc) from exc
        return PutOnceResult(created=True, location=location)


@contextlib.asynccontextmanager
async def open_transfer_provider(settings: AzureSettings) -> AsyncIterator[BlobCopyProvider]:
    async with contextlib.AsyncExitStack() as stack:
        yield BlobCopyProvider(AzureClients(settings, stack), settings)


@contextlib.asynccontextmanager
async def open_artifact_store(settings: AzureSettings) -> AsyncIterator[ArtifactStore]:
    async with contextlib.AsyncExitStack() as stack:
        yield BlobArtifactStore(AzureClients(settings, stack))
