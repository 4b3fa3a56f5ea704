"""The S3 API, shared by the local provider (SeaweedFS, MinIO) and the AWS provider: client, error
translation, streamed multipart upload with bounded memory, server-side copy of any size, and the
create-only artefact store that writes metadata.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError
from pydantic import BaseModel, SecretStr

from lc2backup.domain import BackupLayout
from lc2backup.providers.base import PutOnceResult
from lc2backup.providers.errors import (
    ObjectNotFound,
    PermanentProviderError,
    ProviderError,
    SourceChanged,
    TransientProviderError,
)

S3Client = Any  # types-aiobotocore-s3's S3Client; kept loose so no SDK type leaks past this package
MIB = 1024 * 1024
SINGLE_COPY_LIMIT = 5 * 1024 * MIB  # CopyObject's documented maximum
MAX_PARTS = 10_000  # a multipart upload's documented maximum number of parts


class S3Settings(BaseModel):
    """An S3 API endpoint: AWS itself (no endpoint), or SeaweedFS / moto / MinIO via ``endpoint_url``.

    Credentials left empty come from the standard AWS chain (environment, profile, IRSA web identity).
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    max_pool_connections: int = 64
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = 8
    connect_timeout: float = 5.0
    read_timeout: float = 60.0


@contextlib.asynccontextmanager
async def s3_client(settings: S3Settings) -> AsyncIterator[S3Client]:
    # Imported here, not at module level: aioboto3 takes ~0.5 s to import (see ``deferred``).
    import aioboto3
    from aiobotocore.config import AioConfig

    session = aioboto3.Session()
    config = AioConfig(
        region_name=settings.region,
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        s3={"addressing_style": "path"} if settings.endpoint_url else {},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    async with session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id.get_secret_value() if settings.access_key_id else None,
        aws_secret_access_key=settings.secret_access_key.get_secret_value() if settings.secret_access_key else None,
        config=config,
    ) as client:
        yield client


_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed", "OperationAborted",
    "500", "502", "503", "504",
}  # fmt: skip
_NOT_FOUND = {
    "NoSuchBucket": "bucket {bucket} does not exist",
    "NoSuchKey": "object {where} does not exist",
    "404": "{where} not found",
    "NotFound": "{where} not found",
}
_CHANGED = {"PreconditionFailed", "412"}
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, where: str, bucket: str = "") -> ProviderError:
    """Map a botocore error to our tree, naming the resource the user has to look at."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
            return TransientProviderError(f"{where}: {code or status} (will retry)")
        if code in _NOT_FOUND:
            named = str(exc.response.get("Error", {}).get("BucketName") or bucket or where)  # S3 names the bucket
            error = ObjectNotFound if code != "NoSuchBucket" else PermanentProviderError
            return error(_NOT_FOUND[code].format(bucket=named, where=where))
        if code in _CHANGED:
            return SourceChanged(f"{where}: changed since it was listed ({code})")
        if code in _DENIED:
            return PermanentProviderError(f"access denied to {where} ({code}): grant the backup role access")
        message = exc.response.get("Error", {}).get("Message", "")
        return PermanentProviderError(f"{where}: {code} {message}".strip())
    if isinstance(exc, (ConnectionError, ReadTimeoutError, asyncio.TimeoutError, OSError)):
        return TransientProviderError(f"{where}: object store unreachable ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return TransientProviderError(f"{where}: {type(exc).__name__}")
    return PermanentProviderError(f"{where}: {exc!r}")


class MultipartWriter:
    """Streams bytes into one object with at most two parts in memory (one filling, one uploading).

    Memory is bounded by ``part_size``, never by the object's size; the SHA-256 of the whole object is
    computed on the way (``sha256``). Bytes go into a part buffer of the full size (no growing, slicing or
    joining, each of which would hold another part at the peak: benchmark B5), and a full part is turned into
    the upload's body only once the previous upload is done.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int = 8 * MIB,
        metadata: dict[str, str] | None = None,
        content_type: str = "application/octet-stream",
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = max(part_size, 5 * MIB)
        self._metadata = metadata or {}
        self._content_type = content_type
        self._buffer = bytearray(0)  # the part being filled, allocated at its full size when first written to
        self._filled = 0
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._pending: asyncio.Task[None] | None = None
        self.size = 0
        self.sha256 = hashlib.sha256()

    @property
    def where(self) -> str:
        return f"s3://{self._bucket}/{self._key}"

    async def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            if not self._buffer:
                self._buffer = bytearray(self._part_size)
            take = min(len(view), self._part_size - self._filled)
            self._buffer[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == self._part_size:
                part, self._buffer, self._filled = self._buffer, bytearray(0), 0
                await self._submit(part)

    async def _submit(self, chunk: bytearray) -> None:
        if self._upload_id is None:
            try:
                created = await self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, Metadata=self._metadata, ContentType=self._content_type
                )
            except Exception as exc:
                raise translate(exc, self.where, self._bucket) from exc
            self._upload_id = created["UploadId"]
        if self._pending is not None:
            await self._pending  # at most one part in flight: memory stays at two parts
        body = bytes(chunk)  # botocore sends bytes without copying them; the part buffer goes at once
        chunk.clear()
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number})
        self._pending = asyncio.create_task(self._upload(number, body))

    async def _upload(self, number: int, chunk: bytes) -> None:
        try:
            resp = await self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=chunk
            )
        except Exception as exc:
            raise translate(exc, f"{self.where} part {number}", self._bucket) from exc
        self._parts[number - 1]["ETag"] = resp["ETag"]

    async def close(self) -> str:
        """Finish the object; returns its ETag."""
        if self._upload_id is None:  # small object: one PUT
            try:
                resp = await self._client.put_object(
                    Bucket=self._bucket,
                    Key=self._key,
                    Body=bytes(self._buffer[: self._filled]),
                    Metadata=self._metadata,
                    ContentType=self._content_type,
                )
            except Exception as exc:
                raise translate(exc, self.where, self._bucket) from exc
            return str(resp["ETag"])
        if self._filled:
            last, self._buffer, self._filled = self._buffer[: self._filled], bytearray(0), 0
            await self._submit(last)
        if self._pending is not None:
            await self._pending
        try:
            resp = await self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        except Exception as exc:
            raise translate(exc, self.where, self._bucket) from exc
        return str(resp["ETag"])

    async def abort(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(BaseException):
                await self._pending
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                await self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)


_CARRIED_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")


@dataclass(frozen=True)
class CopyResult:
    etag: str
    multipart: bool


async def copy_server_side(
    client: S3Client,
    *,
    src_bucket: str,
    src_key: str,
    dst_bucket: str,
    dst_key: str,
    size: int,
    etag: str,
    single_copy_limit: int = SINGLE_COPY_LIMIT,
    part_size: int = 512 * MIB,
) -> CopyResult:
    """Copy without the bytes passing through us: CopyObject up to the limit, UploadPartCopy above it.

    ``CopySourceIfMatch`` pins the source version: if the object changes mid-copy the copy fails (412)
    instead of producing a mixture of two versions.
    """
    source = {"Bucket": src_bucket, "Key": src_key}
    where = f"copy s3://{src_bucket}/{src_key} -> s3://{dst_bucket}/{dst_key}"
    try:
        if size <= single_copy_limit:
            resp = await client.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source, CopySourceIfMatch=etag)
            return CopyResult(str(resp["CopyObjectResult"]["ETag"]), multipart=False)
        # UploadPartCopy carries no object metadata: take it from the pinned source, as CopyObject would.
        head = await client.head_object(Bucket=src_bucket, Key=src_key, IfMatch=etag)
        carried = {k: head[k] for k in _CARRIED_HEADERS if head.get(k)}
        created = await client.create_multipart_upload(
            Bucket=dst_bucket, Key=dst_key, Metadata=head.get("Metadata", {}), **carried
        )
        upload_id = created["UploadId"]
        part_size = max(part_size, -(-size // MAX_PARTS))
        try:
            parts = []
            for number, start in enumerate(range(0, size, part_size), start=1):
                end = min(start + part_size, size) - 1
                part = await client.upload_part_copy(
                    Bucket=dst_bucket,
                    Key=dst_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                    CopySourceIfMatch=etag,
                )
                parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
            done = await client.complete_multipart_upload(
                Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(Bucket=dst_bucket, Key=dst_key, UploadId=upload_id)
            raise
        return CopyResult(str(done["ETag"]), multipart=True)
    except ProviderError:
        raise
    except Exception as exc:
        raise translate(exc, where, src_bucket) from exc


async def put_once(
    client: S3Client, bucket: str, key: str, body: bytes, content_type: str
) -> tuple[bool, bytes | None]:
    """Create-only put (``If-None-Match: *``). Returns (created, existing body if it was already there)."""
    try:
        await client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
        return True, None
    except ClientError as exc:
        if error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc
    except Exception as exc:
        raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc
    try:
        existing = await client.get_object(Bucket=bucket, Key=key)
        async with existing["Body"] as stream:
            return False, bytes(await stream.read())
    except Exception as exc:
        raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc


class S3ArtifactStore:
    """metadata.json (and any other write-once artefact) on an S3 API: create-only, never overwritten."""

    name = "s3"

    def __init__(self, client: S3Client) -> None:
        self._client = client

    async def put_once(self, layout: BackupLayout, key: str, body: bytes, content_type: str) -> PutOnceResult:
        created, existing = await put_once(self._client, layout.bucket, key, body, content_type)
        return PutOnceResult(created=created, location=layout.uri(key), existing=existing)
