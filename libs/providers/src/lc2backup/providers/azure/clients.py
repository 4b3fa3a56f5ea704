"""The Azure SDK clients one provider uses, built on first use and closed with it.

One ``DefaultAzureCredential`` (aio) per provider; a management client per engine (PostgreSQL, MySQL) and
subscription, a blob service client per storage account. azure-core's retry policy honours ``Retry-After`` on 429 and 503 (``http_retries``);
``ca_file`` is trusted on every connection.
"""

from __future__ import annotations

import contextlib
from typing import Any

from lc2backup.providers.azure.settings import AzureSettings


class AzureClients:
    def __init__(self, settings: AzureSettings, stack: contextlib.AsyncExitStack) -> None:
        self.settings = settings
        self._stack = stack
        self._credential: Any = None
        self._management: dict[tuple[str, str], Any] = {}
        self._blobs: dict[str, Any] = {}

    def _options(self) -> dict[str, Any]:
        s = self.settings
        options: dict[str, Any] = {"retry_total": s.http_retries, "retry_backoff_factor": s.http_backoff_seconds}
        options |= {"connection_timeout": s.timeout_seconds, "read_timeout": s.timeout_seconds}
        if s.ca_file:
            options["connection_verify"] = s.ca_file
        return options

    async def credential(self) -> Any:
        if self._credential is None:
            from azure.identity.aio import DefaultAzureCredential

            self._credential = await self._stack.enter_async_context(DefaultAzureCredential())
        return self._credential

    async def management(self, engine: str, subscription: str) -> Any:
        """PostgreSQLManagementClient or MySQLManagementClient (aio) of ``subscription``."""
        if (engine, subscription) not in self._management:
            from azure.mgmt.mysqlflexibleservers.aio import MySQLManagementClient
            from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient

            kind: Any = MySQLManagementClient if engine == "mysql" else PostgreSQLManagementClient
            client = kind(
                await self.credential(),
                subscription,
                base_url=self.settings.management_endpoint,
                polling_interval=0,  # we poll through our own durable steps, never inside a call
                **self._options(),
            )
            self._management[engine, subscription] = await self._stack.enter_async_context(client)
        return self._management[engine, subscription]

    def account_url(self, account: str) -> str:
        return self.settings.blob_endpoint.format(account=account).rstrip("/")

    async def blobs(self, account: str) -> Any:
        """BlobServiceClient (aio) of ``account``."""
        if account not in self._blobs:
            from azure.storage.blob.aio import BlobServiceClient

            s = self.settings
            retry = _retry_after_policy(s.http_retries, s.http_backoff_seconds)
            client = BlobServiceClient(
                self.account_url(account), credential=await self.credential(), retry_policy=retry, **self._options()
            )
            self._blobs[account] = await self._stack.enter_async_context(client)
        return self._blobs[account]


def _retry_after_policy(total: int, backoff: float) -> Any:
    """The storage SDK's exponential retry (it knows Blob Storage's retryable answers), waiting what a 503
    ``ServerBusy`` / 429 says in ``Retry-After`` when it says something: the SDK's own policy ignores it."""
    from azure.storage.blob.aio import ExponentialRetry

    class RetryAfter(ExponentialRetry):
        def get_backoff_time(self, settings: dict[str, Any]) -> float:
            history = settings.get("history") or []
            response = getattr(history[-1], "http_response", None) if history else None
            value = response.headers.get("Retry-After") if response is not None else None
            try:
                return float(value) if value is not None else float(super().get_backoff_time(settings))
            except ValueError:
                return float(super().get_backoff_time(settings))

    policy = RetryAfter(increment_base=2, retry_total=total, random_jitter_range=0)
    policy.initial_backoff = backoff  # type: ignore[assignment]  # typed int, used as a float
    return policy
