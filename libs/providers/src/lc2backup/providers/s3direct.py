"""The lean path for S3-compatible endpoints: ListObjectsV2 and CopyObject over aiohttp, signed by ``sigv4``.

Why: a server-side copy moves no bytes through us, so its cost is the client's CPU per request, and botocore
spends ~2 ms of it per CopyObject (request model, serialisation, hooks, parsing) — on a small machine that is
as much CPU as the server's own copy (see ``reference/perf-baselines.md``). Here a copy is one signed PUT and
a few string operations. Everything else (multipart copies above the single-copy limit, HEAD, the manifest,
and AWS itself, whose credentials come from the full provider chain) stays on aioboto3.

Errors keep the botocore shape (``ClientError`` with ``Error.Code``), so ``s3.translate`` and the copier's
handling of vanished (``NoSuchKey``) and changed (``PreconditionFailed``) sources apply unchanged; connection
failures become ``ConnectionError`` (transient).
"""

from __future__ import annotations

import contextlib
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import unquote_plus, urlsplit

import aiohttp
from botocore.exceptions import ClientError
from yarl import URL

from lc2backup.providers.base import ArtifactStore, PutOnceResult
from lc2backup.providers.deferred import DeferredS3Client
from lc2backup.providers.s3 import S3ArtifactStore, S3Settings, translate
from lc2backup.providers.sigv4 import Signer, canonical_query, uri_encode


@dataclass(frozen=True)
class DirectEndpoint:
    """An S3-compatible endpoint with static credentials: the only case the lean path serves."""

    url: str
    region: str
    access_key: str
    secret_key: str
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: S3Settings) -> DirectEndpoint | None:
        """None for AWS itself (no endpoint) or credentials from the provider chain: those stay on aioboto3."""
        if not settings.endpoint_url or settings.access_key_id is None or settings.secret_access_key is None:
            return None
        return cls(
            settings.endpoint_url.rstrip("/"),
            settings.region,
            settings.access_key_id.get_secret_value(),
            settings.secret_access_key.get_secret_value(),
            settings.connect_timeout,
            settings.read_timeout,
        )


@dataclass(frozen=True, slots=True)
class Listed:
    key: str
    size: int
    etag: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _error(status: int, body: bytes, operation: str, bucket: str) -> ClientError:
    code, message = str(status), ""
    try:
        root = ET.fromstring(body) if body else None
    except ET.ParseError:
        root = None
    if root is not None:
        fields = {_local(child.tag): child.text or "" for child in root}
        code, message = fields.get("Code", code), fields.get("Message", "")
        bucket = fields.get("BucketName", bucket)
    response = {
        "Error": {"Code": code, "Message": message, "BucketName": bucket},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


class DirectS3:
    """One aiohttp session (a connection pool of ``connections``) for one copy job."""

    def __init__(self, endpoint: DirectEndpoint, connections: int) -> None:
        self._endpoint = endpoint
        self._host = urlsplit(endpoint.url).netloc
        self._signer = Signer(endpoint.access_key, endpoint.secret_key, endpoint.region)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DirectS3:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._endpoint.connect_timeout, sock_read=self._endpoint.read_timeout
        )
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(
        self,
        method: str,
        bucket: str,
        key: str,
        query: dict[str, str],
        headers: dict[str, str],
        operation: str,
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        assert self._session is not None, "use DirectS3 with async with"
        path = "/" + uri_encode(bucket, keep_slash=False) + ("/" + uri_encode(key, keep_slash=True) if key else "")
        digest = hashlib.sha256(body).hexdigest()
        signed = self._signer.sign(method, path, query, {"host": self._host, **headers}, payload_sha256=digest)
        url = f"{self._endpoint.url}{path}" + (f"?{canonical_query(query)}" if query else "")
        try:
            request = self._session.request(method, URL(url, encoded=True), headers=signed, data=body or None)
            async with request as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectionError(f"{operation} on {self._host}: {type(exc).__name__}: {exc}") from exc

    async def list_objects(
        self, bucket: str, prefix: str, start_after: str | None = None
    ) -> AsyncIterator[list[Listed]]:
        """ListObjectsV2, page by page (1,000 keys each), after ``start_after`` if given."""
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "encoding-type": "url", "max-keys": "1000"}
            if start_after and not token:
                query["start-after"] = start_after
            if token:
                query["continuation-token"] = token
            status, body = await self._send("GET", bucket, "", query, {}, "ListObjectsV2")
            if status != 200:
                raise _error(status, body, "ListObjectsV2", bucket)
            root = ET.fromstring(body)
            fields = {_local(child.tag): child for child in root if _local(child.tag) != "Contents"}
            encoded = (fields["EncodingType"].text or "") == "url" if "EncodingType" in fields else False
            page = []
            for child in root:
                if _local(child.tag) != "Contents":
                    continue
                obj = {_local(f.tag): f.text or "" for f in child}
                key = unquote_plus(obj["Key"]) if encoded else obj["Key"]
                page.append(Listed(key, int(obj["Size"]), obj["ETag"]))
            yield page
            truncated = "IsTruncated" in fields and (fields["IsTruncated"].text or "").lower() == "true"
            token = fields["NextContinuationToken"].text if truncated and "NextContinuationToken" in fields else None
            if not token:
                return

    async def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, if_match: str) -> str:
        """CopyObject pinned to ``if_match``; returns the new ETag (quoted, as S3 sends it)."""
        headers = {
            "x-amz-copy-source": f"/{uri_encode(src_bucket, keep_slash=False)}/{uri_encode(src_key, keep_slash=True)}",
            "x-amz-copy-source-if-match": if_match,
        }
        status, body = await self._send("PUT", dst_bucket, dst_key, {}, headers, "CopyObject")
        if status != 200:
            raise _error(status, body, "CopyObject", dst_bucket)
        root = ET.fromstring(body)
        if _local(root.tag) == "Error":  # S3 may fail a copy after sending 200
            raise _error(500, body, "CopyObject", dst_bucket)
        for child in root:
            if _local(child.tag) == "ETag":
                return child.text or ""
        raise _error(500, b"", "CopyObject", dst_bucket)

    async def put_if_absent(self, bucket: str, key: str, body: bytes, content_type: str) -> bool:
        """PutObject with ``If-None-Match: *``: True if created, False if the key already existed."""
        headers = {"content-type": content_type, "if-none-match": "*"}
        status, answer = await self._send("PUT", bucket, key, {}, headers, "PutObject", body)
        if status == 200:
            return True
        error = _error(status, answer, "PutObject", bucket)
        if error.response["Error"]["Code"] in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            return False
        raise error

    async def get_object(self, bucket: str, key: str) -> bytes:
        status, body = await self._send("GET", bucket, key, {}, {}, "GetObject")
        if status != 200:
            raise _error(status, body, "GetObject", bucket)
        return body


class DirectArtifactStore:
    """``S3ArtifactStore`` on the lean path: metadata.json create-only (``If-None-Match: *``), same results and
    errors, a fraction of botocore's CPU per backup (the metadata service writes one per backup; B2)."""

    name = "s3"

    def __init__(self, http: DirectS3, scheme: str = "s3") -> None:
        self._http = http
        self._scheme = scheme

    async def put_once(self, bucket: str, key: str, body: bytes, content_type: str) -> PutOnceResult:
        where = f"s3://{bucket}/{key}"
        try:
            created = await self._http.put_if_absent(bucket, key, body, content_type)
            existing = None if created else await self._http.get_object(bucket, key)
        except Exception as exc:
            raise translate(exc, where, bucket) from exc
        return PutOnceResult(created=created, location=f"{self._scheme}://{bucket}/{key}", existing=existing)


@contextlib.asynccontextmanager
async def local_artifact_store(settings: S3Settings, stack: contextlib.AsyncExitStack) -> AsyncIterator[ArtifactStore]:
    """The lean store for an S3-compatible endpoint with static credentials, else botocore's (opened on use)."""
    endpoint = DirectEndpoint.from_settings(settings)
    if endpoint is None:
        yield S3ArtifactStore(DeferredS3Client(settings, stack))
        return
    async with DirectS3(endpoint, settings.max_pool_connections) as http:
        yield DirectArtifactStore(http)
