"""Helpers of the GCP tests: the fakes of one session, the spec, GCS-side seeding and inspection.

The test talks to the servers directly (google-cloud-storage anonymously to fake-gcs-server, the fakes'
``/_fake`` control API) to set up and to count what the services did; the services reach the same servers
through the real Google clients with Application Default Credentials from an ``external_account_authorized_user`` file whose
token endpoint is the fake Cloud SQL Admin server's.
"""

from __future__ import annotations

import asyncio
import gzip
import secrets
from dataclasses import dataclass
from typing import Any

from lc2backup.testing.gcp.stack import PROJECT, GcpFakes, seed_gcs
from tests.support import cloud_spec

__all__ = ["PROJECT", "GcpFakes", "seed_gcs"]

# the services refresh with this through their ADC file; no test, event, log or artefact may ever show it
REFRESH_TOKEN = f"lc2-refresh-{secrets.token_hex(16)}"


@dataclass(frozen=True)
class CloudSql:
    """An instance of the fake Cloud SQL: its name, and the real database behind it (the spec's databaseName)."""

    name: str
    database: str
    dsn: str


def gcp_spec(instance: CloudSql, source: str, destination: str, **overrides: Any) -> dict[str, Any]:
    return cloud_spec("gcp", instance.name, instance.database, source, destination, **overrides)


async def listing(client: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key (relative to ``prefix``) -> (size, md5Hash)."""

    def read() -> dict[str, tuple[int, str]]:
        return {b.name[len(prefix) :]: (int(b.size), str(b.md5_hash)) for b in client.list_blobs(bucket, prefix=prefix)}

    return await asyncio.to_thread(read)


async def read_gs(client: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    body: bytes = await asyncio.to_thread(lambda: client.bucket(bucket).blob(key).download_as_bytes())
    return body


async def generation(client: Any, uri: str) -> int:
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    blob = await asyncio.to_thread(lambda: client.bucket(bucket).get_blob(key))
    assert blob is not None, uri
    return int(blob.generation)


def gunzip(body: bytes) -> str:
    return gzip.decompress(body).decode()


def ours(state: dict[str, Any], backup_id: str, instance: str) -> tuple[list[Any], list[Any]]:
    """(backup runs, export operations) the fake holds for ``instance`` and this backup."""
    runs = [r for r in state["backupRuns"] if r.get("instance") == instance and backup_id in str(r.get("description"))]
    exports = [
        o
        for o in state["operations"]
        if o.get("operationType") == "EXPORT"
        and o.get("targetId") == instance
        and backup_id in str((o.get("exportContext") or {}).get("uri"))
    ]
    return runs, exports
