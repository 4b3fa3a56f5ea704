"""``make demo PROVIDER=azure``: the same backup through the azure provider, against local stand-ins of Azure.

Besides the local stack, the demo starts the Azure stand-ins of the test package (``lc2backup.testing.azure``,
installed by ``make install``, never in the image): Azurite (account ``devstoreaccount1``) behind a copy proxy,
a managed-identity endpoint and Resource Manager. The ``lportal`` database becomes the flexible server
``liferay-azure`` and the store is seeded into the container ``liferay-dl``. The services use the real Azure SDKs
with ``DefaultAzureCredential`` over HTTPS; the long-term-retention backup streams ``pg_dump``'s archive into the
backup container, as Azure does.

The sample's instanceId is the server's resource id, fixed by the stand-ins' subscription and resource group,
so the sample is applied as it is, like the gcp one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lc2backup.cli.demodata import (
    BACKUP_BUCKET,
    DATABASE,
    SOURCE_BUCKET,
    DemoData,
    DemoSize,
    demo_layout,
    seed_database,
)
from lc2backup.cli.errors import StackFailure
from lc2backup.devstack import LocalStack
from lc2backup.devstack.azurite import ACCOUNT
from lc2backup.domain import is_generated

SAMPLE = "deploy/samples/backuprequest-azure-demo.yaml"
SERVER = "liferay-azure"
BLOB_URL = f"https://{ACCOUNT}.blob.core.windows.net/"


class AzureDemo:
    """The Azure stand-ins of one demo run: started, seeded, described, stopped."""

    sample = SAMPLE
    stand_ins = "the Azure stand-ins (Azurite, Resource Manager, a managed identity)"
    guide = "see docs/azure.md"

    def __init__(self, where: Path) -> None:
        self._where = where
        self._fakes: Any = None

    def start(self) -> None:
        try:
            from lc2backup.testing.azure.stack import AzureFakes
        except ImportError as exc:
            raise StackFailure(
                "PROVIDER=azure needs the test package lc2backup-testing (its Azure stand-ins)",
                hint="run it from the repository: make demo PROVIDER=azure (make install installs it)",
            ) from exc
        self._fakes = AzureFakes.start(self._where / "azure")

    def prepare(self, stack: LocalStack, size: DemoSize) -> DemoData:
        dsn = stack.postgres.create_database(DATABASE)
        database_bytes = asyncio.run(seed_database(dsn, size))
        self._fakes.add_server(SERVER, dsn)
        objects, object_bytes, generated = asyncio.run(self._seed(size))
        return DemoData(dsn, database_bytes, objects, object_bytes, generated, seeded_now=True)

    async def _seed(self, size: DemoSize) -> tuple[int, int, int]:
        from lc2backup.testing.azure.stack import seed_blobs

        async with self._fakes.client() as client:
            for container in (SOURCE_BUCKET, BACKUP_BUCKET):
                await client.create_container(container)
            await seed_blobs(client, SOURCE_BUCKET, "", demo_layout(size))
            blobs = [b async for b in client.get_container_client(SOURCE_BUCKET).list_blobs()]
        return len(blobs), sum(int(b.size) for b in blobs), sum(is_generated(b.name) for b in blobs)

    def env(self) -> dict[str, str]:
        """The azure provider pointed at the stand-ins; they finish an operation in about a second, so the services
        poll every second (the default, 15 s, suits Azure's minutes)."""
        env: dict[str, str] = self._fakes.env()
        return {**env, "LC2_POLL_INTERVAL_SECONDS": "1"}

    def where(self) -> str:
        f = self._fakes
        return f"Blob endpoint    {f.azurite.account_url}  (Azurite, as {ACCOUNT}; Resource Manager {f.arm.endpoint})"

    def artefacts(self, wanted: dict[str, str | None]) -> dict[str, tuple[str, int | None]]:
        return asyncio.run(self._artefacts(wanted))

    async def _artefacts(self, wanted: dict[str, str | None]) -> dict[str, tuple[str, int | None]]:
        """Each artefact's URL and the size Azurite reports for it (read back, not taken from the events). The
        database's location is the long-term-retention backup's folder; the archive in it is shown."""
        from azure.core.exceptions import ResourceNotFoundError

        found: dict[str, tuple[str, int | None]] = {}
        async with self._fakes.client() as client:
            for label, uri in wanted.items():
                if not uri:
                    continue
                container, _, key = uri.removeprefix(BLOB_URL).partition("/")
                try:
                    listed = client.get_container_client(container).list_blobs(name_starts_with=key)
                    sizes = {str(b.name): int(b.size) async for b in listed}
                except ResourceNotFoundError:
                    sizes = {}
                dumps = sorted(name for name in sizes if name.endswith(".dump"))
                if key.endswith("/") and dumps:
                    key = dumps[0]
                found[label] = (f"{BLOB_URL}{container}/{key}", sizes.get(key))
        return found

    def stop(self) -> None:
        if self._fakes is not None:
            self._fakes.stop()
