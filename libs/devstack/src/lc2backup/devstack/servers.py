"""One small server process on 127.0.0.1 and a free port, ready when an HTTP probe answers: the shape of every
stand-in the stack starts (moto, fake-gcs-server, the GCP API stand-ins), written once."""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.probes import http_ok
from lc2backup.devstack.processes import ManagedProcess


@dataclass
class LoopbackServer:
    """A subclass names itself, its readiness path and its command line; logs go to ``directory/<name>.log``."""

    name: ClassVar[str]
    ready_path: ClassVar[str]
    ready_timeout: ClassVar[float] = 30.0
    stop_grace: ClassVar[float] = 5.0

    directory: Path
    port: int = field(default_factory=free_port, kw_only=True)
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)

    def argv(self) -> list[str]:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = ManagedProcess(self.name, self.argv(), log_path=self.directory / f"{self.name}.log")
        self._process.start()

    def wait_ready(self) -> float:
        assert self._process is not None
        probe = f"{self.endpoint}{self.ready_path}"
        return self._process.wait_ready(lambda: http_ok(probe), timeout=self.ready_timeout)

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=self.stop_grace)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()


def call_json(
    url: str, method: str = "GET", body: Any = None, timeout: float = 30.0, context: ssl.SSLContext | None = None
) -> Any:
    """One JSON request to a stand-in's test-control API (``/_fake/...``, ``/moto-api/...``); ``context`` for one
    served over HTTPS with a test CA."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None
