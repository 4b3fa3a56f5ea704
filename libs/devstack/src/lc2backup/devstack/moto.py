"""moto's server mode (``moto_server`` from the dev dependency group): the AWS APIs of the test suite.

One process on 127.0.0.1 and a free port answers every emulated service (RDS, S3, ...): it picks the
service from the request's SigV4 credential scope, so RDS and S3 clients share one endpoint. State is in
memory; ``reset()`` clears it. moto is a dev dependency only: production never imports it.
"""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.probes import http_ok
from lc2backup.devstack.processes import ManagedProcess


def moto_server_binary() -> str:
    candidate = Path(sys.executable).parent / "moto_server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("moto_server")
    if found is None:
        raise StackError("moto_server not found: install the dev dependency group (make install)")
    return found


@dataclass
class MotoServer:
    """``moto_server`` on 127.0.0.1; any access key is accepted, the account is moto's default."""

    directory: Path
    port: int = field(default_factory=free_port)
    _process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = ManagedProcess(
            "moto",
            [moto_server_binary(), "-H", LOOPBACK, "-p", str(self.port)],
            log_path=self.directory / "moto.log",
        )
        self._process.start()

    def wait_ready(self) -> float:
        assert self._process is not None
        return self._process.wait_ready(lambda: http_ok(f"{self.endpoint}/moto-api/"), timeout=60)

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    def reset(self) -> None:
        """Forget every emulated resource (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=10)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None
