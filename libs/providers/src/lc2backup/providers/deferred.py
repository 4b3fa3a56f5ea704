"""An S3 client opened on first use, so a worker service is ready before it has built one.

Why: importing botocore and building its S3 client (it loads the service model) is about half of db-export's,
doclib-transfer's and metadata's start-up (benchmark B7), and none of them needs object storage to be
ready: readiness means connected to NATS with the consumer in place. The first operation that talks to S3
opens the client (once, under a lock) into the service's exit stack, which closes it at shutdown as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from lc2backup.providers.s3 import S3Client, S3Settings, s3_client


class DeferredS3Client:
    """Stands in for the botocore S3 client: its operations (coroutines) and ``get_paginator``."""

    def __init__(self, settings: S3Settings, stack: contextlib.AsyncExitStack) -> None:
        self._settings = settings
        self._stack = stack
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> S3Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._stack.enter_async_context(s3_client(self._settings))
        return self._client

    def __getattr__(self, operation: str) -> Callable[..., Awaitable[Any]]:
        if operation.startswith("_"):
            raise AttributeError(operation)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await getattr(await self.open(), operation)(*args, **kwargs)

        return call

    def get_paginator(self, operation: str) -> _DeferredPaginator:
        return _DeferredPaginator(self, operation)


class _DeferredPaginator:
    def __init__(self, owner: DeferredS3Client, operation: str) -> None:
        self._owner = owner
        self._operation = operation

    async def paginate(self, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        client = await self._owner.open()
        async for page in client.get_paginator(self._operation).paginate(**kwargs):
            yield page
