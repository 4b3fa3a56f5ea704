"""The GCP fakes together (fake-gcs-server, Cloud SQL Admin, Storage Transfer) for the tests and
``make demo PROVIDER=gcp``, with the settings that point our services at them.

The services reach them through the real Google clients with Application Default Credentials: an
``external_account_authorized_user`` file whose token endpoint is the fake Cloud SQL Admin server's, so every request carries a
bearer token the fakes issued (and the refresh token is a secret the tests look for everywhere).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lc2backup.devstack.fakegcs import FakeGcsServer
from lc2backup.devstack.seeding import DocumentLibraryLayout
from lc2backup.testing.gcp.sqladmin import FakeSqlAdmin
from lc2backup.testing.gcp.sts import FakeStorageTransfer
from lc2backup.testing.gcp.tokens import write_adc_file

PROJECT = "lc2-test-project"


@dataclass
class GcpFakes:
    gcs: FakeGcsServer
    sqladmin: FakeSqlAdmin
    sts: FakeStorageTransfer
    adc: Path
    refresh_token: str = field(repr=False)

    @classmethod
    def start(cls, root: Path, refresh_token: str | None = None) -> GcpFakes:
        token = refresh_token or f"lc2-refresh-{secrets.token_hex(16)}"
        gcs = FakeGcsServer(root / "gcs")
        gcs.start()
        sqladmin = FakeSqlAdmin(root / "sqladmin", gcs.endpoint, token)
        sqladmin.start()
        sts = FakeStorageTransfer(root / "sts", gcs.endpoint)
        sts.start()
        adc = write_adc_file(root / "adc.json", sqladmin.token_uri, token)
        fakes = cls(gcs, sqladmin, sts, adc, token)
        fakes.fast()
        return fakes

    def fast(self) -> None:
        """Operations that take a moment (they pass through PENDING and RUNNING), nothing held."""
        self.sqladmin.configure(pending_seconds=0.2, running_seconds=0.5)
        self.sqladmin.hold(False)
        self.sts.configure(objects_per_second=None, queued_seconds=0.2)
        self.sts.hold(False)

    def stop(self) -> None:
        self.sts.stop()
        self.sqladmin.stop()
        self.gcs.stop()

    def env(self, project: str = PROJECT, **overrides: str) -> dict[str, str]:
        """What the services need to use the gcp provider against the fakes."""
        return {
            "LC2_PROVIDERS": json.dumps(["local", "gcp"]),
            "LC2_GCP__PROJECT": project,
            "LC2_GCP__SQLADMIN_ENDPOINT": self.sqladmin.endpoint,
            "LC2_GCP__STORAGE_ENDPOINT": self.gcs.endpoint,
            "LC2_GCP__STORAGE_TRANSFER_ENDPOINT": self.sts.endpoint,
            "LC2_GCP__BUSY_BACKOFF_SECONDS": "0.1",
            "LC2_GCP__TRANSIENT_RETRY_SECONDS": "0.5",
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.adc),
            "GOOGLE_CLOUD_PROJECT": project,  # the ADC file names none
            "NO_GCE_CHECK": "true",  # never probe a metadata server from a developer machine
            **overrides,
        }

    def client(self, project: str = PROJECT) -> Any:
        """An anonymous google-cloud-storage client of fake-gcs-server (to set up and to inspect)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[attr-defined]

        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.gcs.endpoint},
        )


async def seed_gcs(client: Any, bucket: str, prefix: str, layout: DocumentLibraryLayout) -> DocumentLibraryLayout:
    """Upload ``layout`` into ``bucket`` with pseudo-random bytes (a few threads: the client is synchronous)."""
    pool = random.Random(13).randbytes(4 * 1024 * 1024)
    items = [*layout.regular.items(), *layout.generated.items()]

    def upload(part: list[tuple[str, int]], seed: int) -> None:
        rng, target = random.Random(seed), client.bucket(bucket)
        for key, size in part:
            start = rng.randrange(0, max(len(pool) - size, 0) + 1)
            body = pool[start : start + size] if size <= len(pool) else (pool * (size // len(pool) + 1))[:size]
            target.blob(f"{prefix}{key}").upload_from_string(body)

    await asyncio.gather(*(asyncio.to_thread(upload, items[i::4], i) for i in range(4)))
    return layout
