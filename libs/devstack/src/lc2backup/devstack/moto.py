"""moto's server mode (``moto_server`` from the dev dependency group): the AWS APIs of the test suite.

One process on 127.0.0.1 and a free port answers every emulated service (RDS, S3, ...): it picks the
service from the request's SigV4 credential scope, so RDS and S3 clients share one endpoint. State is in
memory; ``reset()`` clears it. moto is a dev dependency only: production never imports it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.servers import LoopbackServer, call_json


def moto_server_binary() -> str:
    candidate = Path(sys.executable).parent / "moto_server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("moto_server")
    if found is None:
        raise StackError("moto_server not found: install the dev dependency group (make install)")
    return found


class MotoServer(LoopbackServer):
    """``moto_server`` on 127.0.0.1; any access key is accepted, the account is moto's default."""

    name = "moto"
    ready_path = "/moto-api/"
    ready_timeout = 60.0
    stop_grace = 10.0

    def argv(self) -> list[str]:
        return [moto_server_binary(), "-H", LOOPBACK, "-p", str(self.port)]

    def reset(self) -> None:
        """Forget every emulated resource (moto's ``/moto-api/reset``)."""
        call_json(f"{self.endpoint}/moto-api/reset", "POST", timeout=10)
