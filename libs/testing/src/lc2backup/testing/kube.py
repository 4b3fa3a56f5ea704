"""A Kubernetes API for tests and the dev stack: the emulator in ``kubeapi.py`` as a real process on loopback.

No kube-apiserver is installable here, so ``kubectl`` and crd-gateway talk to this emulator through a
kubeconfig that points at it. Objects survive ``restart()`` (a state file), the change history does not,
as after a real API server restart. ``compact()`` and ``drop_watches()`` are the fault hooks the tests use.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.probes import http_status
from lc2backup.devstack.processes import ManagedProcess

CONTEXT = "lc2-emulator"


@dataclass
class KubeEmulator:
    """One emulated API server on 127.0.0.1 serving ``crds`` (CRD YAML files) and core ``events``."""

    directory: Path
    crds: list[Path] = field(default_factory=list)
    namespace: str = "default"
    port: int = field(default_factory=free_port)
    history: int = 10_000
    bookmark_seconds: float = 60.0  # kube-apiserver sends a BOOKMARK to a quiet watch about once a minute
    _process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT, "user": {"token": "emulator"}}],
            "contexts": [
                {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": self.namespace}}
            ],
            "current-context": CONTEXT,
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))  # JSON is YAML: kubectl and clients read it

    def spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_kubeconfig()
        argv = [sys.executable, "-m", "lc2backup.testing.kubeapi", "--host", LOOPBACK, "--port", str(self.port)]
        argv += ["--state", str(self.directory / "objects.json"), "--history", str(self.history)]
        argv += ["--bookmark-seconds", str(self.bookmark_seconds)]
        for crd in self.crds:
            argv += ["--crd", str(crd)]
        self._process = ManagedProcess("kubeapi", argv, log_path=self.directory / "kubeapi.log")
        self._process.start()

    def wait_ready(self) -> float:
        assert self._process is not None
        return self._process.wait_ready(lambda: http_status(f"{self.url}/version", timeout=0.5) == 200)

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    def restart(self) -> float:
        """Stop and start on the same port: objects are kept, open watches break, history is gone."""
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=5)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    def _hook(self, name: str) -> dict[str, object]:
        request = urllib.request.Request(f"{self.url}/_emulator/{name}", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as resp:
            doc: dict[str, object] = json.loads(resp.read())
            return doc

    def compact(self) -> None:
        """Forget the change history and end every watch: resuming from an older resourceVersion is 410."""
        self._hook("compact")

    def drop_watches(self) -> None:
        """End every open watch stream (clients see the stream close and must resume)."""
        self._hook("drop-watches")

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None
