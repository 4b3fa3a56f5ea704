"""Test helpers shared by the suites: a running system of five services, API polling, spec builders."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
import httpx

from lc2backup.devstack import SERVICE_MODULES, LocalStack, NatsServer, ServiceSet
from lc2backup.devstack.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from lc2backup.devstack.seeding import LIFERAY_TABLES
from tests.polling import eventually

TERMINAL = {"Succeeded", "Failed", "Rejected"}
ALL_SERVICES = tuple(SERVICE_MODULES)
# A backup's services: the restorer is started only by the tests of restores (one process less to start per test)
BACKUP_SERVICES = tuple(name for name in SERVICE_MODULES if name != "restorer")


@contextlib.asynccontextmanager
async def stack_s3(stack: LocalStack) -> AsyncIterator[Any]:
    """A botocore S3 client on the stack's SeaweedFS."""
    async with aioboto3.Session().client(
        "s3",
        endpoint_url=stack.s3.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as client:
        yield client


async def rebuild_projection(env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``lc2backup-archiver rebuild`` as its own process with ``env`` on top of ours; fails the test if it fails."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "lc2backup.archiver", "rebuild"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def cloud_spec(
    provider: str, instance: str, database: str, source: str, destination: str, **overrides: Any
) -> dict[str, Any]:
    """A managed-snapshot backup of ``instance`` (database ``database``) on a cloud provider: the store under
    ``dl/``, the backups under ``backups/``, generated files excluded."""
    spec: dict[str, Any] = {
        "projectId": "retail",
        "environment": "prd",
        "provider": provider,
        "database": {"type": "snapshot", "instanceId": instance, "databaseName": database},
        "documentLibrary": {
            "sourceBucket": source,
            "sourcePrefix": "dl/",
            "destinationBucket": destination,
            "destinationPrefix": "backups/",
            "excludeGeneratedFiles": True,
        },
        "retentionDays": 14,
    }
    spec.update(overrides)
    return spec


def local_spec(
    source: str,
    destination: str,
    *,
    instance: str = "liferay-test",
    database_name: str = "lportal",
    prefix: str = "backups/",
    **overrides: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "projectId": "retail",
        "environment": "dev",
        "provider": "local",
        "database": {"type": "dump", "instanceId": instance, "databaseName": database_name},
        "documentLibrary": {
            "sourceBucket": source,
            "destinationBucket": destination,
            "destinationPrefix": prefix,
            "excludeGeneratedFiles": True,
        },
        "retentionDays": 7,
    }
    spec.update(overrides)
    return spec


@dataclass
class System:
    stack: LocalStack
    nats: NatsServer
    env: dict[str, str]
    log_dir: Path
    source_dsn: str
    projection_dsn: str
    services: ServiceSet | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # per service, on top of env
    replicas: int = 1  # processes of each service at once (a Deployment scaled out, or mid rolling update)
    names: tuple[str, ...] = BACKUP_SERVICES  # the services started: those a backup needs, unless a test asks more

    @classmethod
    def local(
        cls,
        stack: LocalStack,
        nats: NatsServer,
        log_dir: Path,
        unique: str,
        extra_env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        replicas: int = 1,
        names: tuple[str, ...] = BACKUP_SERVICES,
    ) -> System:
        """The five services on a fresh projection database and a fresh Liferay-like source database, with
        the short intervals the tests want; ``extra_env`` on top for every service, ``service_env`` per service."""
        projection = stack.postgres.create_database(f"p_{unique}")
        source_db = stack.postgres.create_database(f"lportal_{unique}")
        env = {
            **stack.env(),
            "LC2_NATS__URL": nats.url,
            "LC2_POSTGRES__DSN": projection,
            "LC2_LOCAL__DATABASES": json.dumps({"liferay-test": source_db}),
            "LC2_CONSUMER__ACK_WAIT_SECONDS": "5",
            "LC2_POLL_INTERVAL_SECONDS": "1",
            "LC2_LOCAL__PROGRESS_INTERVAL_SECONDS": "0.5",
            "LC2_LEASE_SECONDS": "3",  # a killed db-export's dump is taken over after this
            **(extra_env or {}),
        }
        return cls(
            stack,
            nats,
            env,
            log_dir,
            source_db,
            projection,
            service_env=service_env or {},
            replicas=replicas,
            names=names,
        )

    def start(self) -> None:
        self.services = ServiceSet(
            {**self.env, **self.extra_env},
            self.log_dir,
            nats_users=self.nats.users,  # each service as its own least-privilege NATS user
            nats_url=self.nats.service_url,
            replicas=self.replicas,
            names=self.names,
        )
        for name, extra in self.service_env.items():
            for replica in self.services.replicas_of(name):
                replica.env.update(extra)
        self.services.start()

    def stop(self) -> None:
        if self.services is not None:
            self.services.stop()

    @property
    def source_database(self) -> str:
        return self.source_dsn.rsplit("/", 1)[-1]

    def spec(self, source: str, destination: str, **overrides: Any) -> dict[str, Any]:
        return local_spec(source, destination, database_name=self.source_database, **overrides)

    @property
    def api(self) -> str:
        assert self.services is not None
        return self.services.api_url

    @property
    def api_token(self) -> str:
        """An operator's bearer token (every project), made up for this system."""
        assert self.services is not None
        return self.services.api_token

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client of the projection API, authenticated as an operator."""
        headers = {"Authorization": f"Bearer {self.api_token}", **kwargs.pop("headers", {})}
        return httpx.AsyncClient(base_url=self.api, headers=headers, **{"timeout": 5, **kwargs})

    def logs(self) -> str:
        return "\n".join(f"==== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.log_dir.glob("*.log")))

    async def get(self, backup_id: str) -> dict[str, Any] | None:
        async with self.client() as client:
            resp = await client.get(f"/api/v1/backups/{backup_id}")
            if resp.status_code == 404:
                return None
            resp.raise_for_status()
            doc: dict[str, Any] = resp.json()
            return doc

    async def events(self, backup_id: str) -> list[dict[str, Any]]:
        async with self.client() as client:
            resp = await client.get(f"/api/v1/backups/{backup_id}/events")
            resp.raise_for_status()
            items: list[dict[str, Any]] = resp.json()["items"]
            return items

    async def restore(self, spec: dict[str, Any], idempotency_key: str | None = None) -> str:
        """POST a restore; its id."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        async with self.client() as client:
            resp = await client.post("/api/v1/restores", json=spec, headers=headers)
            assert resp.status_code == 202, resp.text
            restore_id: str = resp.json()["restoreId"]
            return restore_id

    async def wait_for_restore(
        self, restore_id: str, states: set[str] | None = None, timeout: float = 90.0
    ) -> dict[str, Any]:
        """Poll the projection API until the restore reaches one of ``states`` (default: any terminal)."""
        wanted = states or TERMINAL

        async def reached() -> dict[str, Any]:
            async with self.client() as client:
                resp = await client.get(f"/api/v1/restores/{restore_id}")
            assert resp.status_code == 200, f"restore {restore_id}: {resp.status_code} {resp.text}"
            doc: dict[str, Any] = resp.json()
            assert doc["state"] in wanted, f"restore {restore_id} is {doc['state']}: {json.dumps(doc)}"
            return doc

        return await eventually(
            reached, timeout=timeout, interval=0.2, what=f"restore {restore_id} in {sorted(wanted)}", context=self.logs
        )

    async def wait_for(self, backup_id: str, states: set[str] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Poll the projection API until the backup reaches one of ``states`` (default: any terminal)."""
        wanted = states or TERMINAL

        async def reached() -> dict[str, Any]:
            doc = await self.get(backup_id)
            assert doc is not None, f"backup {backup_id} is not in the projection"
            assert doc["state"] in wanted, f"backup {backup_id} is {doc['state']}: {json.dumps(doc)}"
            return doc

        return await eventually(
            reached, timeout=timeout, interval=0.2, what=f"backup {backup_id} in {sorted(wanted)}", context=self.logs
        )


def row_counts(stack: LocalStack, database: str) -> dict[str, int]:
    """Rows per Liferay table of ``database`` (read with psql: an oracle that shares no code with a restore)."""
    return {t: int(stack.postgres.psql(f"SELECT count(*) FROM {t}", database=database)) for t in LIFERAY_TABLES}
