"""The blob side of an Azure restore: ``metadata.json`` and the manifest read from the backup container, the
document library copied back by Blob Storage itself, a restored library checked, a scratch one removed, the
verdict written next to the backup.

Every object of the manifest is copied from the backup container with Azure's Copy Blob
(``lc2backup.providers.azure.copying``: started once, pending copies followed, aborted past their deadline). An
object already in the target equal to the backup's (same size and Content-MD5, or a finished copy of it) is not
copied again, a pending copy of it is followed, another version is replaced: a restore repeated after a crash copies
only what is missing. A backup object missing or changed since the backup (its ETag is not the manifest's) fails
the branch naming it. Both containers are in the backup's storage account (the plan's ``account``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from typing import Any

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.layout import location
from lc2backup.domain.restoring import DocumentLibraryPlan, RestorePlan
from lc2backup.providers.azure.clients import AzureClients
from lc2backup.providers.azure.copying import BlobCopier
from lc2backup.providers.azure.errors import AzureCall
from lc2backup.providers.azure.settings import AzureSettings
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.restore_checks import ArtefactCheck, ManifestLine, check_metadata, compare_library
from lc2backup.providers.restore_checks import parse_manifest as parse_lines
from lc2backup.providers.restoring import LibraryRestored, Progress
from lc2backup.runtime.crashpoints import crash_point

WRITER = "the built-in role 'Storage Blob Data Contributor' on the storage account's containers"


def split_blob(where: str) -> tuple[str, str, str]:
    """``https://<account>.blob.core.windows.net/<container>/<key>`` -> (account, container, key)."""
    parts = urllib.parse.urlsplit(where)
    account = parts.netloc.split(".", 1)[0]
    container, _, key = parts.path.lstrip("/").partition("/")
    if parts.scheme != "https" or not account or not container:
        raise PermanentProviderError(f"{where} is not a blob location of the azure provider")
    return account, container, key


def _md5(blob: Any) -> str:
    digest = getattr(getattr(blob, "content_settings", None), "content_md5", None)
    return bytes(digest).hex() if digest else ""


def _etag(blob: Any) -> str:
    return str(blob.etag).strip('"')


def _copy_status(blob: Any) -> str:
    return str(getattr(getattr(blob, "copy", None), "status", None) or "").lower()


def _copied_from(blob: Any, url: str) -> bool:
    """``blob`` holds a finished copy of ``url`` (what equality rests on where a blob has no Content-MD5)."""
    source = getattr(getattr(blob, "copy", None), "source", None)
    same = source is not None and urllib.parse.urlsplit(source).path == urllib.parse.urlsplit(url).path
    return same and _copy_status(blob) == "success"


def _equal(target: Any, source: Any, url: str) -> bool:
    if target is None or int(target.size) != int(source.size):
        return False
    if _md5(target) and _md5(source):
        return _md5(target) == _md5(source)
    return _copied_from(target, url)


class BlobLibrary:
    def __init__(self, clients: AzureClients, settings: AzureSettings) -> None:
        self._clients = clients
        self._settings = settings

    def _call(self, resource: str) -> AzureCall:
        return AzureCall(WRITER, resource, "", self._settings.transient_retry_seconds)

    @staticmethod
    def _account(plan: DocumentLibraryPlan) -> str:
        if not plan.account:
            raise PermanentProviderError(
                f"the restore's plan names no storage account for container {plan.source_bucket}: it was planned"
                " before the azure provider restored; ask for the restore again"
            )
        return plan.account

    async def read(self, where: str, *, missing_ok: bool = False) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        account, container, key = split_blob(where)
        blob = (await self._clients.blobs(account)).get_blob_client(container, key)
        try:
            return bytes(await (await blob.download_blob()).readall())
        except ResourceNotFoundError as exc:
            if missing_ok:
                return None
            raise PermanentProviderError(f"{where} does not exist") from exc
        except Exception as exc:
            raise self._call(where).translate(exc) from exc

    # validation

    async def check_metadata(self, plan: RestorePlan, artefact: ArtefactCheck, checks: list[str]) -> list[str]:
        assert plan.metadata_location is not None
        where = plan.metadata_location
        found = check_metadata(await self.read(where, missing_ok=True), where, plan, artefact)
        if not found:
            checks.append(f"{where} matches the backup's log")
        return found

    async def check_target(self, plan: DocumentLibraryPlan, checks: list[str]) -> list[str]:
        """The target container exists and the prefix is empty (or ``merge``)."""
        from azure.core.exceptions import ResourceNotFoundError

        account = self._account(plan)
        where = location("https", plan.target_bucket, plan.target_prefix, account)
        container = (await self._clients.blobs(account)).get_container_client(plan.target_bucket)
        try:
            await container.get_container_properties()
            first = None
            async for blob in container.list_blobs(name_starts_with=plan.target_prefix):
                first = str(blob.name)
                break
        except ResourceNotFoundError:
            return [
                f"container {plan.target_bucket} does not exist in storage account {account}: create it (LC2 Backup"
                " never creates containers) or name another in spec.documentLibrary.bucket"
            ]
        except Exception as exc:
            raise self._call(where).translate(exc) from exc
        if first is not None and not plan.merge:
            return [f"{where} is not empty (holds {first}): choose an empty prefix, or merge: true"]
        checks.append(f"{where} is {'empty' if first is None else 'merged into (merge: true)'}")
        return []

    # reads of the library

    async def _manifest(self, plan: DocumentLibraryPlan) -> list[ManifestLine]:
        if plan.manifest_key is None:
            raise PermanentProviderError(f"the backup recorded no manifest in container {plan.source_bucket}")
        where = location("https", plan.source_bucket, plan.manifest_key, self._account(plan))
        body = await self.read(where)
        assert body is not None
        return parse_lines(body, where)

    async def _listing(self, plan: DocumentLibraryPlan, container: str, prefix: str) -> dict[str, Any]:
        """name below ``prefix`` -> the blob's properties (size, ETag, Content-MD5, copy status)."""
        account = self._account(plan)
        client = (await self._clients.blobs(account)).get_container_client(container)
        found: dict[str, Any] = {}
        try:
            async for blob in client.list_blobs(name_starts_with=prefix, include=["copy"]):
                found[str(blob.name)[len(prefix) :]] = blob
        except Exception as exc:
            raise self._call(location("https", container, prefix, account)).translate(exc) from exc
        return found

    async def _source_urls(self, plan: DocumentLibraryPlan, manifest: list[ManifestLine]) -> dict[str, str]:
        """Each manifest object's URL in the backup container (the copy's source)."""
        service = await self._clients.blobs(self._account(plan))
        base = service.get_container_client(plan.source_bucket).url.rstrip("/")
        quote = urllib.parse.quote
        return {line.key: f"{base}/{quote(plan.source_prefix + line.key, safe='/~')}" for line in manifest}

    @staticmethod
    def _backed_up(plan: DocumentLibraryPlan, line: ManifestLine, source: Any | None) -> str | None:
        """What is wrong with the backup's copy of ``line`` (None: it is there, unchanged since the backup)."""
        where = location("https", plan.source_bucket, f"{plan.source_prefix}{line.key}", plan.account)
        if source is None:
            return f"object {line.key} of the backup is missing: {where} is in the manifest but not in the container"
        if _etag(source) != line.etag:
            return (
                f"object {line.key} of the backup changed: {where} has ETag {_etag(source)}, the manifest {line.etag}"
            )
        return None

    # the restore

    async def restore(self, plan: DocumentLibraryPlan, progress: Progress) -> LibraryRestored:
        manifest = await self._manifest(plan)
        sources = await self._listing(plan, plan.source_bucket, plan.source_prefix)
        present = await self._listing(plan, plan.target_bucket, plan.target_prefix)
        urls = await self._source_urls(plan, manifest)
        for line in manifest:
            if (problem := self._backed_up(plan, line, sources.get(line.key))) is not None:
                raise PermanentProviderError(problem)
        todo = [line for line in manifest if not _equal(present.get(line.key), sources[line.key], urls[line.key])]
        total = sum(line.size for line in manifest)
        done, done_bytes = len(manifest) - len(todo), total - sum(line.size for line in todo)
        service = await self._clients.blobs(self._account(plan))
        copier = BlobCopier(self._settings, WRITER)
        slots = asyncio.Semaphore(self._settings.copy_workers)
        last = time.monotonic()

        async def restore(line: ManifestLine) -> None:
            nonlocal done, done_bytes, last
            there, source = present.get(line.key), sources[line.key]
            destination = service.get_blob_client(plan.target_bucket, f"{plan.target_prefix}{line.key}")
            replace = there is not None and _copy_status(there) != "pending"  # another version; ours is followed
            async with slots:
                props = await copier.copy(urls[line.key], line.key, destination, replace=replace)
            if props is None:
                raise PermanentProviderError(f"object {line.key} of the backup vanished while it was restored")
            if int(props.size) != line.size or (_md5(props) and _md5(props) != _md5(source)):
                raise PermanentProviderError(
                    f"object {line.key} restored to {destination.url} is not the backup's: {props.size} bytes, MD5"
                    f" {_md5(props) or 'none'}; the backup's {line.size} bytes, MD5 {_md5(source) or 'none'}"
                )
            crash_point("restore:object")  # test-only (lc2backup.runtime.crashpoints)
            done += 1
            done_bytes += line.size
            if time.monotonic() - last >= self._settings.progress_interval_seconds:
                last = time.monotonic()
                await progress(done, done_bytes)

        async with asyncio.TaskGroup() as group:
            for line in todo:
                group.create_task(restore(line))
        return LibraryRestored(objects=len(manifest), bytes=total, copied=len(todo))

    # verification, removal, the verdict

    async def verify(
        self, plan: DocumentLibraryPlan, summary: VerificationSummary, findings: list[str], checks: list[str]
    ) -> VerificationSummary:
        """Every manifest object present with its size, nothing extra (unless merged), a sample of MD5s equal to
        the backup's blobs (whose ETags are the manifest's)."""
        manifest = await self._manifest(plan)
        sources = await self._listing(plan, plan.source_bucket, plan.source_prefix)
        present = await self._listing(plan, plan.target_bucket, plan.target_prefix)
        urls = await self._source_urls(plan, manifest)

        def differs(line: ManifestLine) -> str | None:
            restored, source = present[line.key], sources.get(line.key)
            if (problem := self._backed_up(plan, line, source)) is not None:
                return problem
            if _md5(restored) and _md5(source):
                same = _md5(restored) == _md5(source)
                return None if same else f"object {line.key} has MD5 {_md5(restored)}, the backup's {_md5(source)}"
            if _copied_from(restored, urls[line.key]):
                return None
            return f"object {line.key} has no Content-MD5 to compare and is not a finished copy of the backup's"

        return compare_library(
            manifest,
            {key: int(blob.size) for key, blob in present.items()},
            location("https", plan.target_bucket, plan.target_prefix, self._account(plan)),
            merge=plan.merge,
            differs=differs,
            sampled_what="MD5s equal the backup's blobs, whose ETags are the manifest's",
            summary=summary,
            findings=findings,
            checks=checks,
        )

    async def remove(self, plan: DocumentLibraryPlan) -> str:
        """Delete every blob under the (scratch) target prefix; what was removed."""
        from azure.core.exceptions import ResourceNotFoundError

        account = self._account(plan)
        where = location("https", plan.target_bucket, plan.target_prefix, account)
        container = (await self._clients.blobs(account)).get_container_client(plan.target_bucket)
        listed = await self._listing(plan, plan.target_bucket, plan.target_prefix)
        slots = asyncio.Semaphore(self._settings.copy_workers)

        async def delete(name: str) -> None:
            async with slots:
                with contextlib.suppress(ResourceNotFoundError):
                    await container.delete_blob(name)

        try:
            await asyncio.gather(*(delete(f"{plan.target_prefix}{key}") for key in listed))
        except Exception as exc:
            raise self._call(where).translate(exc) from exc
        return f"{len(listed)} blobs under {where}"

    async def write_verdict(self, restore_id: str, plan: RestorePlan, body: bytes) -> str:
        """``verifications/<restoreId>.json`` in the backup's folder, next to ``metadata.json``."""
        from azure.storage.blob import ContentSettings

        assert plan.metadata_location is not None
        account, container, key = split_blob(plan.metadata_location)
        target = f"{key.rsplit('/', 1)[0]}/verifications/{restore_id}.json"
        where = location("https", container, target, account)
        blob = (await self._clients.blobs(account)).get_blob_client(container, target)
        json = ContentSettings(content_type="application/json")
        await self._call(where).run(lambda: blob.upload_blob(body, overwrite=True, content_settings=json))
        return where
