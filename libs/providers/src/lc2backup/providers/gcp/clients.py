"""The Google clients, built once per service from Application Default Credentials; every call off the loop.

The three libraries are synchronous: each call runs in a worker thread (``asyncio.to_thread``). The discovery
client's transport (httplib2) is not thread-safe, so each Cloud SQL call gets its own authorised ``Http``;
google-cloud-storage and the Storage Transfer REST client share a ``requests`` session, which is. Libraries are
imported on first use: a service that does not enable ``gcp`` never loads them (start-up time, B7).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from lc2backup.providers.gcp.settings import GcpSettings

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
T = TypeVar("T")


def _endpoint(url: str | None) -> dict[str, str]:
    return {"api_endpoint": url} if url else {}


class GcpClients:
    """Credentials, the default project and the three clients, created lazily (the first call pays)."""

    def __init__(self, settings: GcpSettings) -> None:
        self.settings = settings
        self._credentials: Any = None
        self._adc_project: str | None = None

    def _adc(self) -> Any:
        if self._credentials is None:
            import google.auth

            self._credentials, self._adc_project = google.auth.default(scopes=list(SCOPES))
        return self._credentials

    @property
    def project(self) -> str | None:
        """The configured project, else the one the credentials belong to."""
        if self.settings.project:
            return self.settings.project
        self._adc()
        return self._adc_project

    @functools.cached_property
    def _sqladmin(self) -> Any:
        from googleapiclient import discovery

        return discovery.build(
            "sqladmin",
            "v1",
            credentials=self._adc(),
            static_discovery=True,
            cache_discovery=False,
            client_options=_endpoint(self.settings.sqladmin_endpoint),
        )

    def _http(self) -> Any:
        import google_auth_httplib2
        import httplib2

        return google_auth_httplib2.AuthorizedHttp(
            self._adc(), http=httplib2.Http(timeout=self.settings.timeout_seconds)
        )

    async def sql(self, build: Callable[[Any], Any]) -> dict[str, Any]:
        """Run one Cloud SQL Admin request (``build`` makes it from the service object) off the loop."""

        def call() -> dict[str, Any]:
            request = build(self._sqladmin)
            result: dict[str, Any] = request.execute(http=self._http(), num_retries=self.settings.http_retries)
            return result

        return await asyncio.to_thread(call)

    @functools.cached_property
    def storage(self) -> Any:
        from google.cloud import storage  # type: ignore[attr-defined]

        return storage.Client(
            project=self.settings.project or "-",
            credentials=self._adc(),
            client_options=_endpoint(self.settings.storage_endpoint),
        )

    @functools.cached_property
    def transfer(self) -> Any:
        from google.cloud import storage_transfer

        return storage_transfer.StorageTransferServiceClient(
            transport="rest",
            credentials=self._adc(),
            client_options=_endpoint(self.settings.storage_transfer_endpoint),
        )

    async def run(self, work: Callable[[], T]) -> T:
        """Run one call of the storage or transfer client off the loop."""
        return await asyncio.to_thread(work)
