"""Cloud Storage as the GCP branches use it: metadata-only reads (a bucket exists, an object's size, company
ids by a delimiter listing, what lies under the excluded prefixes, objects with their sizes and MD5s) and
``metadata.json`` written once (``ifGenerationMatch=0``: a second write is refused by GCS itself, and the body
already there is returned); for a restore, small files of our own (read, written once, removed) and a scratch
prefix removed.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from lc2backup.domain import BackupLayout
from lc2backup.providers.base import ArtifactStore, PutOnceResult
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.errors import GcpCall
from lc2backup.providers.gcp.settings import GcpSettings

DELETE_WORKERS = 16
AREAS = ("", "_deleted/", "_new/")  # Liferay's store areas (lc2backup.domain.liferay.STORE_AREAS)


def split_gs(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    return bucket, key


class GcsBuckets:
    def __init__(self, clients: GcpClients) -> None:
        self._clients = clients

    def _call(self, permission: str, resource: str, fix: str = "") -> GcpCall:
        return GcpCall(permission, resource, fix, self._clients.settings.transient_retry_seconds)

    async def exists(self, bucket: str, what: str, field: str) -> bool:
        call = self._call("storage.buckets.get", f"{what} gs://{bucket}", f"create it, or fix {field}")
        try:
            found = await self._clients.run(lambda: self._clients.storage.lookup_bucket(bucket))
        except Exception as exc:
            raise call.translate(exc) from exc
        return found is not None

    async def require(self, bucket: str, what: str, field: str) -> None:
        """Fail by name when ``bucket`` does not exist (or cannot be read): before anything starts."""
        if not await self.exists(bucket, what, field):
            raise PermanentProviderError(f"{what} gs://{bucket} does not exist: create it, or fix {field}")

    async def objects(self, bucket: str, prefix: str, limit: int | None = None) -> dict[str, tuple[int, str | None]]:
        """Key (without ``prefix``) -> (size, MD5 in hex) of the objects under ``prefix``, from the listing alone
        (a composite object has no MD5: None); at most ``limit`` of them."""

        def listing() -> dict[str, tuple[int, str | None]]:
            found: dict[str, tuple[int, str | None]] = {}
            for blob in self._clients.storage.list_blobs(bucket, prefix=prefix, max_results=limit):
                md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None
                found[str(blob.name)[len(prefix) :]] = (int(blob.size or 0), md5)
            return found

        call = self._call("storage.objects.list", f"gs://{bucket}/{prefix}")
        try:
            return await self._clients.run(listing)
        except Exception as exc:
            raise call.translate(exc) from exc

    async def read(self, uri: str) -> bytes | None:
        """A small object's bytes; None when it does not exist."""
        from google.api_core.exceptions import NotFound

        bucket, key = split_gs(uri)

        def get() -> bytes | None:
            try:
                body: bytes = self._clients.storage.bucket(bucket).blob(key).download_as_bytes()
            except NotFound:
                return None
            return body

        call = self._call("storage.objects.get", uri)
        try:
            return await self._clients.run(get)
        except Exception as exc:
            raise call.translate(exc) from exc

    async def created(self, uri: str) -> datetime | None:
        """When the object at ``uri`` was written (GCS's clock); None when it does not exist."""
        bucket, key = split_gs(uri)
        call = self._call("storage.objects.get", uri)
        try:
            blob = await self._clients.run(lambda: self._clients.storage.bucket(bucket).get_blob(key))
        except Exception as exc:
            raise call.translate(exc) from exc
        if blob is None:
            return None
        created: datetime = blob.time_created or datetime.min.replace(tzinfo=UTC)
        return created

    async def put(self, uri: str, body: bytes, content_type: str, *, once: bool = False) -> bool:
        """Write ``body`` at ``uri``; with ``once``, only if nothing is there (False: something was)."""
        from google.api_core.exceptions import PreconditionFailed

        bucket, key = split_gs(uri)

        def upload() -> bool:
            blob = self._clients.storage.bucket(bucket).blob(key)
            try:
                blob.upload_from_string(body, content_type=content_type, if_generation_match=0 if once else None)
            except PreconditionFailed:
                return False
            return True

        call = self._call("storage.objects.create", uri)
        try:
            return await self._clients.run(upload)
        except Exception as exc:
            raise call.translate(exc) from exc

    async def delete(self, bucket: str, keys: Iterable[str]) -> int:
        """Delete ``keys`` of ``bucket`` (one already gone is not an error); how many were named."""
        from google.api_core.exceptions import NotFound

        names = list(keys)

        def remove() -> None:  # one request per object (JSON API), a few at once
            target = self._clients.storage.bucket(bucket)

            def one(key: str) -> None:
                with contextlib.suppress(NotFound):
                    target.blob(key).delete()

            with ThreadPoolExecutor(max_workers=DELETE_WORKERS) as pool:
                list(pool.map(one, names))

        call = self._call("storage.objects.delete", f"gs://{bucket}")
        try:
            await self._clients.run(remove)
        except Exception as exc:
            raise call.translate(exc) from exc
        return len(names)

    async def size(self, uri: str) -> int | None:
        bucket, key = split_gs(uri)
        call = self._call("storage.objects.get", uri)
        try:
            blob = await self._clients.run(lambda: self._clients.storage.bucket(bucket).get_blob(key))
        except Exception as exc:
            raise call.translate(exc) from exc
        return int(blob.size) if blob is not None and blob.size is not None else None

    async def company_ids(self, bucket: str, prefix: str) -> list[str]:
        """Top-level folders under ``prefix`` (and its store areas) that look like Liferay company ids."""

        def listing() -> set[str]:
            ids: set[str] = set()
            for area in AREAS:
                pages = self._clients.storage.list_blobs(bucket, prefix=f"{prefix}{area}", delimiter="/")
                for _ in pages:  # the prefixes are known once the pages are read
                    pass
                for common in pages.prefixes:
                    name = str(common)[len(prefix) + len(area) :].rstrip("/")
                    if name.isdigit():
                        ids.add(name)
            return ids

        call = self._call("storage.objects.list", f"gs://{bucket}/{prefix}")
        try:
            return sorted(await self._clients.run(listing))
        except Exception as exc:
            raise call.translate(exc) from exc

    async def count(self, bucket: str, prefixes: Iterable[str]) -> tuple[int, int]:
        """(objects, bytes) under ``prefixes``: what a managed transfer excluded, counted from the listing."""
        wanted = list(prefixes)

        def listing() -> tuple[int, int]:
            objects = size = 0
            for prefix in wanted:
                for blob in self._clients.storage.list_blobs(bucket, prefix=prefix):
                    objects += 1
                    size += int(blob.size or 0)
            return objects, size

        call = self._call("storage.objects.list", f"gs://{bucket}")
        try:
            return await self._clients.run(listing)
        except Exception as exc:
            raise call.translate(exc) from exc


class GcsArtifactStore:
    name = "gcp"

    def __init__(self, clients: GcpClients) -> None:
        self._clients = clients

    async def put_once(self, layout: BackupLayout, key: str, body: bytes, content_type: str) -> PutOnceResult:
        from google.api_core.exceptions import PreconditionFailed

        bucket, location = layout.bucket, layout.uri(key)

        def put() -> bytes | None:  # in a worker thread, the client's first use (credentials) included
            blob = self._clients.storage.bucket(bucket).blob(key)
            try:
                blob.upload_from_string(body, content_type=content_type, if_generation_match=0)
            except PreconditionFailed:  # written by an earlier delivery: hand back what is there
                existing: bytes = blob.download_as_bytes()
                return existing
            return None

        call = GcpCall("storage.objects.create", location, "", self._clients.settings.transient_retry_seconds)
        try:
            existing = await self._clients.run(put)
        except Exception as exc:
            raise call.translate(exc) from exc
        return PutOnceResult(created=existing is None, location=location, existing=existing)


@contextlib.asynccontextmanager
async def open_artifact_store(settings: GcpSettings) -> AsyncIterator[ArtifactStore]:
    yield GcsArtifactStore(GcpClients(settings))
