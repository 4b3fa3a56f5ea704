"""Azurite (npm ``azurite``, pinned): Azure Blob Storage for the Azure tests and ``make demo PROVIDER=azure``.

Installed by ``make install`` into ``.tools/azurite`` (``ensure_azurite`` installs it on first use elsewhere)
and run as ``azurite-blob`` on 127.0.0.1, state in memory. Served over HTTPS with OAuth ``basic`` (a bearer
token's issuer, audience and expiry are checked, not its signature) so the services reach it exactly as they
reach Azure: ``DefaultAzureCredential`` and TLS (azure-core refuses bearer tokens over plain http). 3.35.0 is
the newest release that runs on Node 20; ``--skipApiVersionCheck`` lets azure-storage-blob send its newer
API version. Azurite completes every copy at once (no pending copies: the tests put a proxy in front for that).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.probes import tcp_open
from lc2backup.devstack.servers import LoopbackServer

AZURITE_VERSION = "3.35.0"
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account (public, documented by Microsoft): for test set-up only."""


def tools_dir() -> Path:
    """``.tools`` of the checkout whose ``.venv`` runs us."""
    return Path(sys.prefix).resolve().parent / ".tools"


def azurite_binary(root: Path | None = None) -> Path:
    return (root or tools_dir()) / "azurite" / "node_modules" / ".bin" / "azurite-blob"


def ensure_azurite(root: Path | None = None) -> Path:
    """The ``azurite-blob`` script, installed with npm when missing (Node and npm must be on PATH)."""
    binary = azurite_binary(root)
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise StackError(
            "Azurite needs Node.js and npm: install them (apt-get install nodejs npm) and run make install"
        )
    prefix = binary.parent.parent.parent
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"azurite@{AZURITE_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        raise StackError(f"npm install azurite@{AZURITE_VERSION} failed: {done.stderr.strip()[-2000:]}")
    return binary


@dataclass
class AzuriteServer(LoopbackServer):
    """azurite-blob on 127.0.0.1 over HTTPS (``cert``/``key``: a certificate for 127.0.0.1) with OAuth."""

    name: ClassVar[str] = "azurite"
    ready_path: ClassVar[str] = "/"

    cert: Path | None = None
    key: Path | None = None

    def argv(self) -> list[str]:
        if self.cert is None or self.key is None:
            raise StackError("AzuriteServer needs a certificate and key for 127.0.0.1 (HTTPS)")
        argv = [str(ensure_azurite()), "--blobHost", LOOPBACK, "--blobPort", str(self.port)]
        argv += ["--cert", str(self.cert), "--key", str(self.key), "--oauth", "basic"]
        return [*argv, "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent"]

    @property
    def endpoint(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def account_url(self) -> str:
        return f"{self.endpoint}/{ACCOUNT}"

    def wait_ready(self) -> float:
        assert self._process is not None
        return self._process.wait_ready(lambda: tcp_open(LOOPBACK, self.port), timeout=self.ready_timeout)
