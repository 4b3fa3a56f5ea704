"""The Azure stand-ins together (Azurite, the pending-copy proxy in front of it, the managed-identity endpoint and
Resource Manager) for the tests and ``make demo PROVIDER=azure``, with the settings that point our services at
them.

The services reach them exactly as they reach Azure: ``DefaultAzureCredential`` (App Service managed identity:
``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``), HTTPS with a CA the services are told to trust
(``LC2_AZURE__CA_FILE``), the real management and blob SDKs. The services' blob endpoint is the proxy, so every
copy and write they make is counted there; the tests set up and inspect Azurite directly with the
well-known development key.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lc2backup.devstack.azurite import ACCOUNT, ACCOUNT_KEY, AzuriteServer
from lc2backup.devstack.seeding import DocumentLibraryLayout
from lc2backup.testing.azure.arm import FakeResourceManager
from lc2backup.testing.azure.certs import TlsFiles, make_tls
from lc2backup.testing.azure.copyproxy import PendingCopyProxy
from lc2backup.testing.azure.identity import ManagedIdentityEndpoint

SUBSCRIPTION = "00000000-0000-4000-8000-00000000a2e1"
RESOURCE_GROUP = "rg-liferay"


@dataclass
class AzureFakes:
    tls: TlsFiles
    azurite: AzuriteServer
    proxy: PendingCopyProxy
    identity: ManagedIdentityEndpoint
    arm: FakeResourceManager

    @classmethod
    def start(cls, root: Path) -> AzureFakes:
        tls = make_tls(root / "tls")
        azurite = AzuriteServer(root / "azurite", cert=tls.cert, key=tls.key)
        azurite.start()
        proxy = PendingCopyProxy(root / "proxy", upstream=azurite.endpoint, cert=tls.cert, key=tls.key, ca=tls.ca)
        identity = ManagedIdentityEndpoint(root / "identity")
        arm = FakeResourceManager(root / "arm", tls=tls, blob_account_url=proxy.account_url)
        for server in (proxy, identity, arm):
            server.spawn()
        for server in (proxy, identity, arm):
            server.wait_ready()
        fakes = cls(tls, azurite, proxy, identity, arm)
        fakes.fast()
        return fakes

    def fast(self) -> None:
        """Operations that take a moment, nothing held, copies completing at once, nothing throttled."""
        self.arm.reset()
        self.arm.configure(operation_seconds=0.5)
        self.proxy.reset()

    def stop(self) -> None:
        for server in (self.arm, self.identity, self.proxy, self.azurite):
            server.stop()

    def env(self, **overrides: str) -> dict[str, str]:
        """What the services need to use the azure provider against the stand-ins."""
        return {
            "LC2_PROVIDERS": json.dumps(["local", "azure"]),
            "LC2_AZURE__SUBSCRIPTION_ID": SUBSCRIPTION,
            "LC2_AZURE__MANAGEMENT_ENDPOINT": self.arm.endpoint,
            "LC2_AZURE__BLOB_ENDPOINT": f"{self.proxy.blob_endpoint}/{{account}}",
            "LC2_AZURE__CA_FILE": str(self.tls.ca),
            "LC2_AZURE__COPY_POLL_SECONDS": "0.1",
            "LC2_AZURE__HTTP_BACKOFF_SECONDS": "0.1",
            "LC2_AZURE__TRANSIENT_RETRY_SECONDS": "0.5",
            **self.identity.env(),
            **overrides,
        }

    def server_id(self, name: str, engine: str = "postgres") -> str:
        namespace = "Microsoft.DBforMySQL" if engine == "mysql" else "Microsoft.DBforPostgreSQL"
        return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{namespace}/flexibleServers/{name}"

    def add_server(self, name: str, dsn: str) -> str:
        """A PostgreSQL flexible server backed by the real database at ``dsn``; its resource id."""
        self.arm.add_server(SUBSCRIPTION, RESOURCE_GROUP, name, dsn=dsn)
        return self.server_id(name)

    def add_mysql_server(self, name: str) -> str:
        """A MySQL flexible server (no database behind it: its export writes the stand-in's note); its resource id."""
        self.arm.add_server(SUBSCRIPTION, RESOURCE_GROUP, name, engine="mysql")
        return self.server_id(name, "mysql")

    def client(self) -> Any:
        """An aio BlobServiceClient of Azurite itself with the development key (to set up and to inspect);
        use it inside ``async with``."""
        from azure.storage.blob.aio import BlobServiceClient

        credential = {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
        return BlobServiceClient(self.azurite.account_url, credential=credential, connection_verify=str(self.tls.ca))


async def seed_blobs(client: Any, container: str, prefix: str, layout: DocumentLibraryLayout) -> DocumentLibraryLayout:
    """Upload ``layout`` into ``container`` with pseudo-random bytes, a few uploads at a time."""
    pool = random.Random(13).randbytes(4 * 1024 * 1024)
    rng = random.Random(17)
    semaphore = asyncio.Semaphore(16)

    async def upload(key: str, size: int) -> None:
        start = rng.randrange(0, max(len(pool) - size, 0) + 1)
        body = pool[start : start + size] if size <= len(pool) else (pool * (size // len(pool) + 1))[:size]
        async with semaphore:
            await client.get_blob_client(container, f"{prefix}{key}").upload_blob(body)

    await asyncio.gather(*(upload(k, s) for k, s in [*layout.regular.items(), *layout.generated.items()]))
    return layout
