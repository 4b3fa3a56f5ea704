"""Kubernetes without a cluster: the API emulator as a real process, the real kubectl, the real client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client, config

from lc2backup.crd_gateway import crd
from lc2backup.crd_gateway.kube import KubeApi, open_api
from lc2backup.crd_gateway.settings import KubernetesSettings
from lc2backup.devstack import LocalStack, NatsServer
from lc2backup.domain import API_GROUP, API_VERSION, KIND
from lc2backup.testing import KubeEmulator
from tests import polling
from tests.support import System

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeEmulator]:
    emulator = KubeEmulator(tmp_path / "kube", crds=[ROOT / resource.contract_path for resource in crd.RESOURCES])
    emulator.start()
    yield emulator
    emulator.stop()


def kube_settings(kube: KubeEmulator, **overrides: Any) -> KubernetesSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "kubeconfig": str(kube.kubeconfig),
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "watch_timeout_seconds": 30,
        **overrides,
    }
    return KubernetesSettings(**values)


@pytest.fixture
async def api(kube: KubeEmulator) -> AsyncIterator[KubeApi]:
    async with open_api(kube_settings(kube)) as kube_api:
        yield kube_api


class Objects:
    """Test-side writes with the real client (the gateway itself never creates BackupRequests)."""

    def __init__(self, api_client: client.ApiClient, namespace: str = "default") -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace

    async def create(self, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}
        doc: dict[str, Any] = await self._custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace or self.namespace, crd.BACKUP_REQUESTS.plural, body
        )
        return doc

    async def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = await self._custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace or self.namespace, crd.BACKUP_REQUESTS.plural, name
        )
        return doc

    async def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
        doc: dict[str, Any] = await self._custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, crd.BACKUP_REQUESTS.plural, name, {"spec": spec}, **options
        )
        return doc

    async def patch_labels(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        options: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
        doc: dict[str, Any] = await self._custom.patch_namespaced_custom_object(
            API_GROUP,
            API_VERSION,
            self.namespace,
            crd.BACKUP_REQUESTS.plural,
            name,
            {"metadata": {"labels": labels}},
            **options,
        )
        return doc

    async def delete(self, name: str) -> None:
        await self._custom.delete_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, crd.BACKUP_REQUESTS.plural, name
        )

    async def events(self, name: str, namespace: str | None = None) -> list[dict[str, Any]]:
        raw: Any = await self._core.list_namespaced_event(namespace or self.namespace, _preload_content=False)
        items: list[dict[str, Any]] = json.loads(await raw.read())["items"]
        return [e for e in items if e["involvedObject"]["name"] == name]


@pytest.fixture
async def objects(kube: KubeEmulator) -> AsyncIterator[Objects]:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    async with client.ApiClient(configuration=cfg) as api_client:
        yield Objects(api_client)


class Kubectl:
    """The real kubectl binary with a kubeconfig pointing at the emulator."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    async def run(self, *args: str, stdin: str | None = None, check: bool = True) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            "kubectl",
            f"--kubeconfig={self.kubeconfig}",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        code = proc.returncode if proc.returncode is not None else -1
        if check and code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {code}: {err.decode()}")
        return code, out.decode(), err.decode()

    async def __call__(self, *args: str, stdin: str | None = None) -> str:
        return (await self.run(*args, stdin=stdin))[1]

    async def apply(self, manifest: dict[str, Any], *flags: str) -> str:
        """``kubectl apply`` with its default ``--validate=strict`` (the emulator serves /openapi/v3)."""
        return await self("apply", *flags, "-f", "-", stdin=yaml.safe_dump(manifest))

    async def refused(self, *args: str, manifest: dict[str, Any] | None = None) -> str:
        """Run kubectl expecting a refusal; returns what it printed on stderr."""
        stdin = yaml.safe_dump(manifest) if manifest is not None else None
        code, out, err = await self.run(*args, stdin=stdin, check=False)
        assert code != 0, f"kubectl {' '.join(args)} was accepted: {out}"
        return err

    async def get(self, name: str, namespace: str = "default", kind: str = "br") -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(await self("get", kind, name, "-n", namespace, "-o", "json"))
        return doc


@pytest.fixture
def kubectl(kube: KubeEmulator) -> Kubectl:
    return Kubectl(kube.kubeconfig)


async def eventually(probe: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """``tests.polling.eventually`` with this suite's argument order and short interval."""
    return await polling.eventually(probe, timeout=timeout, what=what, interval=0.05)


@pytest.fixture
def k8s_system(
    stack: LocalStack,
    nats_server: NatsServer,
    kube: KubeEmulator,
    tmp_path: Path,
    unique: str,
    system_services: tuple[str, ...],
) -> Iterator[System]:
    """The services as real processes (``system_services``: a backup's five, unless a module asks more);
    crd-gateway watches the emulator."""
    kubernetes = {
        "LC2_KUBERNETES__ENABLED": "true",
        "LC2_KUBERNETES__KUBECONFIG": str(kube.kubeconfig),
        "LC2_KUBERNETES__BACKOFF_INITIAL_SECONDS": "0.1",
        "LC2_KUBERNETES__BACKOFF_MAX_SECONDS": "1",
        "LC2_KUBERNETES__STATUS_RETRY_SECONDS": "0.5",
    }
    system = System.local(stack, nats_server, tmp_path / "logs", unique, kubernetes, names=system_services)
    system.start()
    yield system
    system.stop()
