"""Helpers of the Azure tests: the spec, Blob-side set-up and inspection.

The test talks to Azurite directly with the development key and to the stand-ins' ``/_fake`` control APIs to
set up and to count what the services did; the services reach the same servers through the real Azure SDKs
with DefaultAzureCredential (a managed identity) over HTTPS.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from lc2backup.devstack.azurite import ACCOUNT
from lc2backup.testing.azure.stack import AzureFakes, seed_blobs
from tests.support import cloud_spec

__all__ = ["ACCOUNT", "AzureFakes", "FlexibleServer", "azure_spec", "blob_client", "listing", "read_blob", "seed_blobs"]


@dataclass(frozen=True)
class FlexibleServer:
    """A flexible server of the stand-in: its resource id, and the real database behind it."""

    id: str
    database: str
    dsn: str


def azure_spec(server: FlexibleServer, source: str, destination: str, **overrides: Any) -> dict[str, Any]:
    spec = cloud_spec("azure", server.id, server.database, source, destination, **overrides)
    spec["documentLibrary"] = {**spec["documentLibrary"], "storageAccount": ACCOUNT}
    return spec


@asynccontextmanager
async def blob_client(fakes: AzureFakes) -> AsyncIterator[Any]:
    async with fakes.client() as client:
        yield client


async def listing(client: Any, container: str, prefix: str) -> dict[str, tuple[int, str]]:
    """name (relative to ``prefix``) -> (size, Content-MD5 as hex)."""
    found: dict[str, tuple[int, str]] = {}
    async for blob in client.get_container_client(container).list_blobs(name_starts_with=prefix):
        md5 = blob.content_settings.content_md5
        found[str(blob.name)[len(prefix) :]] = (int(blob.size), bytes(md5).hex() if md5 else "")
    return found


async def read_blob(client: Any, container: str, name: str) -> bytes:
    stream = await client.get_blob_client(container, name).download_blob()
    return bytes(await stream.readall())


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
