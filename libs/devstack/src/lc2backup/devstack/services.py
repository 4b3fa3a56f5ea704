"""Launching the six services as real processes against a stack (demo, tests, benchmarks).

Each runs as ``python -m lc2backup.<service>`` with its own health port and is ready when ``/readyz``
answers 200. Stopping sends SIGTERM (ordered shutdown in the service) and SIGKILLs after a grace period.

Replicas: a set may run each service as several processes at once (``replicas``), as a Deployment scaled out
or in the middle of a rolling update: each replica has its own health port and log (``<name>-<n>.log`` from
the second on) and is addressed as ``<name>#<n>``; ``set[name]`` is the first.

Security as deployed: given the NATS server's users, each service connects as its own least-privilege user;
and the projection API always runs with authentication, here with an operator token made up for this set
(``api_token``; only its SHA-256 reaches the archiver, merged into any ``LC2_API__TOKENS`` already given).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.devstack.natsauth import NatsUsers
from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.probes import http_status
from lc2backup.devstack.processes import ManagedProcess

SERVICE_MODULES: dict[str, str] = {
    "crd-gateway": "lc2backup.crd_gateway",
    "db-export": "lc2backup.db_export",
    "doclib-transfer": "lc2backup.doclib_transfer",
    "metadata": "lc2backup.metadata",
    "archiver": "lc2backup.archiver",
    "restorer": "lc2backup.restorer",
}


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    replica: int = 1
    ready_seconds: float | None = None
    process: ManagedProcess | None = None
    _spawned_at: float = 0.0

    @property
    def key(self) -> str:
        """``name`` for the first replica, ``name#n`` for the n-th."""
        return self.name if self.replica == 1 else f"{self.name}#{self.replica}"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30.0) -> float:
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        env = {**os.environ, **self.env, "LC2_HEALTH__PORT": str(self.port), "LC2_LOG_FORMAT": "text"}
        if self.name == "archiver":
            env["LC2_API__PORT"] = str(self.port)
        log_name = self.name if self.replica == 1 else f"{self.name}-{self.replica}"
        self.process = ManagedProcess(
            self.key,
            [sys.executable, "-m", SERVICE_MODULES[self.name]],
            log_path=self.log_dir / f"{log_name}.log",
            env=env,
        )
        self._spawned_at = time.monotonic()
        self.process.start()

    def wait_ready(self, timeout: float = 30.0) -> float:
        assert self.process is not None
        self.process.wait_ready(
            lambda: http_status(f"{self.url}/readyz", timeout=0.5) == 200, timeout=timeout, interval=0.02
        )
        self.ready_seconds = time.monotonic() - self._spawned_at
        return self.ready_seconds

    def stop(self, grace: float = 25.0) -> None:
        if self.process is not None:
            self.process.stop(grace=grace)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


@dataclass
class ServiceSet:
    """The six services (or a subset) against one stack's environment, ``replicas`` processes of each."""

    env: Mapping[str, str]
    log_dir: Path
    names: Iterable[str] = tuple(SERVICE_MODULES)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    nats_users: NatsUsers | None = None
    nats_url: str | None = None  # the address services use with their own user (NatsServer.service_url)
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    replicas: int = 1

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {self.replicas}")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            env = dict(self.env)
            if name == "archiver":
                env["LC2_API__TOKENS"] = with_operator_token(env.get("LC2_API__TOKENS"), self.api_token)
            if self.nats_users is not None:
                env.update(self.nats_users.service_env(name, self.nats_url or env["LC2_NATS__URL"]))
            for replica in range(1, self.replicas + 1):
                svc = ServiceProcess(name, dict(env), self.log_dir, replica=replica)
                self.services[svc.key] = svc

    def start(self) -> dict[str, float]:
        for svc in self.services.values():  # spawn on this thread (death signal), wait in parallel
            svc.spawn()
        try:
            with ThreadPoolExecutor(max_workers=len(self.services)) as pool:
                futures = {name: pool.submit(svc.wait_ready) for name, svc in self.services.items()}
                return {name: f.result() for name, f in futures.items()}
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        with ThreadPoolExecutor(max_workers=len(self.services)) as pool:
            list(pool.map(lambda s: s.stop(), self.services.values()))

    def restart(self, key: str) -> float:
        """Stop the process ``key`` (a name, or ``name#n`` for a replica) if it still runs, and start a fresh one
        on the same port."""
        old = self.services[key]
        old.stop()
        fresh = ServiceProcess(old.name, old.env, self.log_dir, port=old.port, replica=old.replica)
        self.services[key] = fresh
        return fresh.start()

    def replicas_of(self, name: str) -> list[ServiceProcess]:
        return [svc for svc in self.services.values() if svc.name == name]

    @property
    def api_url(self) -> str:
        return self.services["archiver"].url

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]


def with_operator_token(configured: str | None, token: str, tenant: str = "local-operator") -> str:
    """``LC2_API__TOKENS`` with ``token`` added as an operator (every project), keeping what was configured."""
    tokens = json.loads(configured) if configured else {}
    tokens[hashlib.sha256(token.encode()).hexdigest()] = {"tenant": tenant, "projects": ["*"]}
    return json.dumps(tokens)
