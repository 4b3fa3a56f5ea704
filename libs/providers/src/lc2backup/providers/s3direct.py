"""The lean S3 data-plane path: ListObjectsV2, CopyObject and create-only PutObject over aiohttp, signed by
botocore's own SigV4 signer with botocore's credential chain, for every S3 endpoint we copy on: AWS itself
and S3-compatible stores (SeaweedFS, MinIO).

Why: a server-side copy moves no bytes through us, so its cost is the client's CPU per request, and
botocore's client spends ~2 ms of it per CopyObject (request model, serialisation, hooks, parsing) — on a
small machine as much CPU as the server's own copy. Benchmark B4 (10,000 objects on two cores) measured the
copy with botocore's client alone at 1.05× ``aws s3 sync`` and 1.7× rclone, against goals of 0.7 and 1.0;
this path meets both. Only the request framing is ours: the signature is ``botocore.auth.S3SigV4Auth`` over a
``botocore.awsrequest.AWSRequest``, the credentials are aiobotocore's chain (environment, profile, IRSA web
identity, container and instance roles, session tokens, refreshed before they expire) unless the settings
carry static keys. Everything else — multipart copies above the single-copy limit, HEAD, the manifest —
stays on the aioboto3 client. Conformance: ``tests/providers/test_s3direct_conformance.py`` compares every
answer with botocore's against moto and SeaweedFS.

Errors keep the botocore shape (``ClientError`` with ``Error.Code``), so ``s3.translate`` and the copier's
handling of vanished (``NoSuchKey``) and changed (``PreconditionFailed``) sources apply unchanged; throttling,
5xx and connection failures are retried like botocore's standard mode, then raised (``ClientError`` with the
server's code, or ``ConnectionError``), both transient for ``translate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus, urlsplit

import aiohttp
from botocore.exceptions import ClientError
from yarl import URL

from lc2backup.domain import BackupLayout
from lc2backup.providers.base import ArtifactStore, PutOnceResult
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.s3 import S3Settings, translate

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials


@dataclass(frozen=True)
class DirectEndpoint:
    """Where the lean path sends its requests: an endpoint (path-style) or AWS itself (``url`` None)."""

    url: str | None
    region: str
    access_key: str | None = field(default=None, repr=False)  # None: botocore's credential chain
    secret_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 5  # in all, the first included

    @classmethod
    def from_settings(cls, settings: S3Settings) -> DirectEndpoint:
        """The same endpoint, region, credentials and retries as ``s3.s3_client(settings)``."""
        static = settings.access_key_id is not None and settings.secret_access_key is not None
        return cls(
            settings.endpoint_url.rstrip("/") if settings.endpoint_url else None,
            settings.region,
            settings.access_key_id.get_secret_value() if static and settings.access_key_id else None,
            settings.secret_access_key.get_secret_value() if static and settings.secret_access_key else None,
            settings.connect_timeout,
            settings.read_timeout,
            max(settings.max_attempts, 0) + 1,  # botocore's max_attempts counts the retries after the first
        )


_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def uri_encode(value: str, *, keep_slash: bool) -> str:
    """RFC 3986 encoding as S3 wants it: everything but unreserved characters (and ``/`` in keys)."""
    return quote(value, safe="/~" if keep_slash else "~")


def _query(params: dict[str, str]) -> str:
    return "&".join(
        f"{uri_encode(k, keep_slash=False)}={uri_encode(v, keep_slash=False)}" for k, v in sorted(params.items())
    )


@dataclass(frozen=True, slots=True)
class Listed:
    key: str
    size: int
    etag: str


async def _backoff(attempt: int) -> None:
    """botocore's standard mode: exponential with full jitter, capped at 20 s."""
    await asyncio.sleep(random.uniform(0, min(20.0, 0.1 * 2**attempt)))


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


_RETRIED_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed",
}  # fmt: skip


def _retried(status: int, error: ClientError) -> bool:
    """What botocore's standard retry mode retries: throttling, 5xx, clock skew, timeouts."""
    return status >= 500 or status == 429 or error.response["Error"]["Code"] in _RETRIED_CODES


class DirectS3:
    """One aiohttp session (a connection pool of ``connections``) for one copy job or one service.

    Opening it is cheap (no botocore import, no credential lookup): both happen on the first request, so a
    service that opens it at start-up stays quick to become ready (benchmark B7).
    """

    def __init__(self, endpoint: DirectEndpoint, connections: int) -> None:
        self._endpoint = endpoint
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._static: ReadOnlyCredentials | None = None
        self._chain: Any = None  # aiobotocore's AioCredentials / AioRefreshableCredentials
        self._auth: Any = None  # botocore.auth.S3SigV4Auth (its class, imported on first use)
        self._request: Any = None  # botocore.awsrequest.AWSRequest
        self._lock = asyncio.Lock()

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

    async def _prepare(self) -> None:
        """Import botocore's signer and resolve the credentials, once."""
        async with self._lock:
            if self._auth is not None:
                return
            from botocore.auth import S3SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import ReadOnlyCredentials

            endpoint = self._endpoint
            if endpoint.access_key is not None and endpoint.secret_key is not None:
                self._static = ReadOnlyCredentials(endpoint.access_key, endpoint.secret_key, None)
            else:
                from aiobotocore.session import AioSession

                self._chain = await AioSession().get_credentials()
                if self._chain is None:
                    raise PermanentProviderError(
                        f"no AWS credentials for S3 in {endpoint.region}: the standard chain (environment, "
                        "profile, IRSA web identity, container or instance role) found none"
                    )
            self._request = AWSRequest
            self._auth = S3SigV4Auth

    async def _credentials(self) -> ReadOnlyCredentials:
        if self._static is not None:
            return self._static
        return await self._chain.get_frozen_credentials()  # type: ignore[no-any-return]  # refreshed when due

    def _url(self, bucket: str, key: str) -> str:
        """Path-style on an endpoint (as ``s3_client`` sets it); virtual-hosted on AWS where the name allows."""
        encoded = uri_encode(key, keep_slash=True)
        if self._endpoint.url is not None:
            return f"{self._endpoint.url}/{uri_encode(bucket, keep_slash=False)}" + (f"/{encoded}" if key else "")
        region = self._endpoint.region
        host = f"s3.{region}.amazonaws.com" + (".cn" if region.startswith("cn-") else "")
        if _DNS_BUCKET.match(bucket):
            return f"https://{bucket}.{host}/{encoded}"
        return f"https://{host}/{uri_encode(bucket, keep_slash=False)}" + (f"/{encoded}" if key else "")

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
        """Sign and send one request, retrying what botocore's standard mode retries; non-2xx raise."""
        assert self._session is not None, "use DirectS3 with async with"
        if self._auth is None:
            await self._prepare()
        url = self._url(bucket, key) + (f"?{_query(query)}" if query else "")
        host = urlsplit(url).netloc  # given, so botocore need not parse the URL for it twice per request
        attempts = self._endpoint.max_attempts
        for attempt in range(1, attempts + 1):
            request = self._request(method=method, url=url, headers={"host": host, **headers}, data=body)
            self._auth(await self._credentials(), "s3", self._endpoint.region).add_auth(request)
            try:
                sent = self._session.request(
                    method, URL(url, encoded=True), headers=dict(request.headers.items()), data=body or None
                )
                async with sent as resp:
                    status, answer = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt < attempts:
                    await _backoff(attempt)
                    continue
                raise ConnectionError(f"{operation} on {host}: {type(exc).__name__}: {exc}") from exc
            if status < 300:
                return status, answer
            error = _error(status, answer, operation, bucket)
            if attempt < attempts and _retried(status, error):
                await _backoff(attempt)
                continue
            raise error
        raise AssertionError("unreachable")

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
            _, body = await self._send("GET", bucket, "", query, {}, "ListObjectsV2")
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
        _, body = await self._send("PUT", dst_bucket, dst_key, {}, headers, "CopyObject")
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
        try:
            await self._send("PUT", bucket, key, {}, headers, "PutObject", body)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    async def get_object(self, bucket: str, key: str) -> bytes:
        _, body = await self._send("GET", bucket, key, {}, {}, "GetObject")
        return body


class DirectArtifactStore:
    """``S3ArtifactStore`` on the lean path: metadata.json create-only (``If-None-Match: *``), same results and
    errors, a fraction of botocore's CPU per backup (the metadata service writes one per backup; B2)."""

    name = "s3"

    def __init__(self, http: DirectS3) -> None:
        self._http = http

    async def put_once(self, layout: BackupLayout, key: str, body: bytes, content_type: str) -> PutOnceResult:
        bucket = layout.bucket
        where = f"s3://{bucket}/{key}"
        try:
            created = await self._http.put_if_absent(bucket, key, body, content_type)
            existing = None if created else await self._http.get_object(bucket, key)
        except Exception as exc:
            raise translate(exc, where, bucket) from exc
        return PutOnceResult(created=created, location=layout.uri(key), existing=existing)


@contextlib.asynccontextmanager
async def artifact_store(settings: S3Settings) -> AsyncIterator[ArtifactStore]:
    """metadata.json on any S3 endpoint (AWS or S3-compatible) over the lean path; cheap to open."""
    async with DirectS3(DirectEndpoint.from_settings(settings), settings.max_pool_connections) as http:
        yield DirectArtifactStore(http)


@contextlib.asynccontextmanager
async def local_artifact_store(settings: S3Settings, stack: contextlib.AsyncExitStack) -> AsyncIterator[ArtifactStore]:
    """The local provider's store (``stack`` is kept for its callers; the store opens nothing heavy)."""
    async with artifact_store(settings) as store:
        yield store
