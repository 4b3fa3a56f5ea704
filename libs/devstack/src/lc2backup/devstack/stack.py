"""The embedded local stack: NATS (JetStream), PostgreSQL and SeaweedFS on loopback, state in one directory.

Used by ``lc2backup dev up``, ``make demo``, the tests and the benchmarks. Servers start in parallel (the
slowest, SeaweedFS, takes ~0.8 s) and stop in reverse order.
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.devstack.nats import NatsServer
from lc2backup.devstack.postgres import PostgresServer
from lc2backup.devstack.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedS3

PROJECTION_DATABASE = "lc2backup"


@dataclass
class LocalStack:
    directory: Path
    nats_sync_always: bool = False
    nats: NatsServer = field(init=False)
    postgres: PostgresServer = field(init=False)
    s3: SeaweedS3 = field(init=False)
    startup_seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = self.directory.resolve()
        self.nats = NatsServer(self.directory / "nats", sync_always=self.nats_sync_always)
        self.postgres = PostgresServer(self.directory)
        self.s3 = SeaweedS3(self.directory / "s3")

    def start(self) -> LocalStack:
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        servers: dict[str, NatsServer | PostgresServer | SeaweedS3] = {
            "s3": self.s3,
            "nats": self.nats,
            "postgres": self.postgres,
        }
        errors: list[Exception] = []
        try:
            for server in servers.values():  # spawn on this thread (death signal), wait in parallel
                server.spawn()
            with ThreadPoolExecutor(max_workers=3) as pool:
                futures = {name: pool.submit(server.wait_ready) for name, server in servers.items()}
                for name, future in futures.items():
                    try:
                        self.startup_seconds[name] = future.result()
                    except Exception as exc:
                        errors.append(exc)
        except Exception as exc:
            errors.append(exc)
        if errors:
            self.stop()
            raise errors[0]
        self.postgres.create_database(PROJECTION_DATABASE)
        self.startup_seconds["total"] = time.monotonic() - started
        return self

    def stop(self) -> None:
        for server in (self.s3, self.postgres, self.nats):
            server.stop()

    def remove(self) -> None:
        """Delete all state (including a PostgreSQL folder kept outside the directory)."""
        link = self.directory / "postgres"
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def env(self) -> dict[str, str]:
        """Everything a service (or the CLI) needs to talk to this stack."""
        return {
            "LC2_NATS__URL": self.nats.url,
            "LC2_S3__ENDPOINT_URL": self.s3.endpoint,
            "LC2_S3__REGION": REGION,
            "LC2_S3__ACCESS_KEY_ID": ACCESS_KEY,
            "LC2_S3__SECRET_ACCESS_KEY": SECRET_KEY,
            "LC2_POSTGRES__DSN": self.postgres.dsn_for(PROJECTION_DATABASE),
        }

    def describe(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "nats": {
                "url": self.nats.url,
                "monitor": f"http://127.0.0.1:{self.nats.monitor_port}",
                "pid": self.nats.pid,
            },
            "postgres": {"dsn": self.postgres.dsn, "pid": self.postgres.pid},
            "s3": {"endpoint": self.s3.endpoint, "pid": self.s3.pid},
            "env": self.env(),
        }

    def write_state(self, extra: dict[str, object] | None = None) -> Path:
        path = self.directory / "stack.json"
        path.write_text(json.dumps({**self.describe(), **(extra or {})}, indent=2))
        return path
