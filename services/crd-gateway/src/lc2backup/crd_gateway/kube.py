"""The Kubernetes API boundary: the few calls crd-gateway makes, with kubernetes-asyncio errors translated here.

Objects stay plain dicts (the CR's schema is ours, and ``.status`` is written as a JSON merge patch), so
the generated models are not used. Watches are read line by line from the raw response rather than with
``kubernetes_asyncio.watch.Watch``: the watcher needs every ``ERROR`` (410 Gone) and the end of each
stream, and must keep the resourceVersion itself to resume from it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from lc2backup.crd_gateway.crd import CustomResource
from lc2backup.crd_gateway.errors import (
    KubernetesError,
    KubernetesUnavailable,
    ResourceConflict,
    ResourceGone,
    ResourceNotFound,
)
from lc2backup.crd_gateway.settings import KubernetesSettings
from lc2backup.domain import API_GROUP, API_VERSION

Json = dict[str, Any]
_TRANSIENT = (aiohttp.ClientError, TimeoutError, OSError)
_FAILURES = (ApiException, *_TRANSIENT)
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Json

    @property
    def resource_version(self) -> str | None:
        rv = (self.object.get("metadata") or {}).get("resourceVersion")
        return str(rv) if rv else None


def _message(body: Any, fallback: str) -> str:
    try:
        doc = json.loads(body) if isinstance(body, (str, bytes)) else body
    except ValueError:
        return fallback
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    return fallback


def translate(status: int, message: str) -> KubernetesError:
    """One HTTP status (0: no answer) to the gateway's error tree."""
    text = f"kubernetes API: {status} {message}".strip()
    if status == 410:
        return ResourceGone(text, status)
    if status == 404:
        return ResourceNotFound(text, status)
    if status == 409:
        return ResourceConflict(text, status)
    if status == 0 or status == 429 or status >= 500:
        return KubernetesUnavailable(text, status)
    return KubernetesError(text, status)


def _raise(exc: BaseException) -> NoReturn:
    if isinstance(exc, ApiException):
        raise translate(int(exc.status or 0), _message(exc.body, str(exc.reason or ""))) from exc
    raise KubernetesUnavailable(f"kubernetes API unreachable: {exc!r}") from exc


async def _configuration(settings: KubernetesSettings) -> client.Configuration:
    cfg = client.Configuration()
    if settings.kubeconfig:
        await config.load_kube_config(
            config_file=settings.kubeconfig, context=settings.context, client_configuration=cfg
        )
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(context=settings.context, client_configuration=cfg)
    return cfg


class KubeApi:
    """Our custom resources (list, watch, get, patch status; each call names its kind) and core/v1 Events (create)."""

    def __init__(self, api_client: client.ApiClient, settings: KubernetesSettings) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._settings = settings
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout_seconds)

    def _list_call(self, resource: CustomResource, namespace: str | None, **kwargs: Any) -> Any:
        plural = resource.plural
        if namespace:
            return self._custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural, **kwargs)
        return self._custom.list_cluster_custom_object(API_GROUP, API_VERSION, plural, **kwargs)

    async def list(self, resource: CustomResource, namespace: str | None) -> tuple[list[Json], str]:
        """Every object of ``resource`` (of ``namespace``, or all), and the list's resourceVersion to watch from."""
        try:
            doc = await self._list_call(resource, namespace, _request_timeout=self._timeout)
        except _FAILURES as exc:
            _raise(exc)
        return list(doc.get("items") or []), str((doc.get("metadata") or {}).get("resourceVersion") or "")

    async def watch(
        self, resource: CustomResource, namespace: str | None, resource_version: str
    ) -> AsyncGenerator[WatchEvent, None]:
        """Changes after ``resource_version`` until the server ends the stream (``watch_timeout_seconds``)."""
        seconds = self._settings.watch_timeout_seconds
        # No total timeout: the read timeout only notices a connection that went silent past the server's end.
        timeout = aiohttp.ClientTimeout(sock_connect=self._settings.request_timeout_seconds, sock_read=seconds + 30)
        try:
            resp = await self._list_call(
                resource,
                namespace,
                watch=True,
                resource_version=resource_version,
                timeout_seconds=seconds,
                allow_watch_bookmarks=True,
                _preload_content=False,
                _request_timeout=timeout,
            )
        except _FAILURES as exc:
            _raise(exc)
        try:
            if resp.status != 200:
                raise translate(resp.status, _message(await resp.read(), resp.reason or ""))
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _event(line)
        except KubernetesError:
            raise
        except _TRANSIENT as exc:
            _raise(exc)
        finally:
            resp.release()

    async def get(self, resource: CustomResource, namespace: str, name: str) -> Json:
        try:
            doc: Json = await self._custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, resource.plural, name, _request_timeout=self._timeout
            )
        except _FAILURES as exc:
            _raise(exc)
        return doc

    async def patch_status(self, resource: CustomResource, namespace: str, name: str, patch: Json) -> Json:
        """A JSON merge patch on the status subresource (include ``metadata.resourceVersion`` to guard it)."""
        # The stubs omit ``_content_type``; without it a dict body would be sent as a JSON *patch* (a list).
        options: dict[str, Any] = {"_content_type": MERGE_PATCH, "_request_timeout": self._timeout}
        try:
            doc: Json = await self._custom.patch_namespaced_custom_object_status(
                API_GROUP,
                API_VERSION,
                namespace,
                resource.plural,
                name,
                patch,
                **options,
            )
        except _FAILURES as exc:
            _raise(exc)
        return doc

    async def create_event(self, namespace: str, body: Json) -> None:
        try:
            await self._core.create_namespaced_event(namespace, cast(Any, body), _request_timeout=self._timeout)
        except _FAILURES as exc:
            _raise(exc)


def _event(line: bytes) -> WatchEvent:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise KubernetesUnavailable(f"kubernetes API: unreadable watch event {line[:200]!r}") from exc
    obj = doc.get("object") if isinstance(doc, dict) else None
    if not isinstance(obj, dict) or "type" not in doc:
        raise KubernetesUnavailable(f"kubernetes API: malformed watch event {line[:200]!r}")
    if doc["type"] == "ERROR":
        raise translate(int(obj.get("code") or 0), str(obj.get("message") or obj.get("reason") or ""))
    return WatchEvent(str(doc["type"]), obj)


@contextlib.asynccontextmanager
async def open_api(settings: KubernetesSettings) -> AsyncIterator[KubeApi]:
    """An API client for the configured cluster, closed on exit."""
    try:
        cfg = await _configuration(settings)
    except Exception as exc:
        raise KubernetesError(f"cannot load Kubernetes credentials: {exc}") from exc
    async with client.ApiClient(configuration=cfg) as api_client:
        yield KubeApi(api_client, settings)
