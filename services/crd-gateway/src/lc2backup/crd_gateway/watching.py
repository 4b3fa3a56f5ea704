"""List, then watch one kind of ours (BackupRequests, RestoreRequests): resume from the last resourceVersion,
re-list on 410, back off on outages.

The resourceVersion only moves past an object once its handler has succeeded, so nothing is skipped: a
handler that fails (NATS down, API down) is retried with backoff and blocks the stream meanwhile, and a
watch that breaks resumes from the last handled change. After ``410 Gone`` (history compacted, API server
restarted) the watcher lists again; handlers are idempotent, so seeing an object twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from lc2backup.crd_gateway.crd import CustomResource
from lc2backup.crd_gateway.errors import GatewayError, KubernetesError, ResourceGone
from lc2backup.crd_gateway.kube import Json, KubeApi, WatchEvent
from lc2backup.eventing import EventingError

log = logging.getLogger(__name__)

Handler = Callable[[WatchEvent], Awaitable[None]]
T = TypeVar("T")
_RETRYABLE = (GatewayError, EventingError, OSError, TimeoutError)


class Stopped(Exception):
    """The service is stopping: leave the loop."""


@dataclass
class Backoff:
    """Exponential backoff with jitter, interrupted by ``stop``."""

    initial: float
    maximum: float
    _next: float = 0.0

    def reset(self) -> None:
        self._next = 0.0

    async def wait(self, stop: asyncio.Event) -> None:
        self._next = min(self._next * 2 if self._next else self.initial, self.maximum)
        delay = self._next * (0.8 + 0.4 * random.random())
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return
        raise Stopped


def creation_order(resource: Json) -> tuple[str, int]:
    meta = resource.get("metadata") or {}
    version = str(meta.get("resourceVersion") or "")
    return str(meta.get("creationTimestamp") or ""), int(version) if version.isdigit() else 0


async def until_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T:
    """Await ``work``, or cancel it and raise ``Stopped`` as soon as ``stop`` is set."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except BaseException:  # whatever it raised while cancelled is moot: we are stopping
        pass
    raise Stopped


class Watcher:
    """One list+watch loop over one kind's objects of one namespace (``None``: all namespaces)."""

    def __init__(
        self,
        api: KubeApi,
        resource: CustomResource,
        namespace: str | None,
        handler: Handler,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._api = api
        self.resource = resource
        self.namespace = namespace
        self._handler = handler
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._handler_backoff = Backoff(backoff_initial, backoff_max)
        self.synced = False  # listed at least once: every existing object has been handled
        self.resource_version: str | None = None
        self.lists = 0
        self.watches = 0

    @property
    def scope(self) -> str:
        return f"{self.resource.plural} in {self.namespace or 'all namespaces'}"

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    if self.resource_version is None:
                        await self._relist(stop)
                    await self._follow(stop)
                    self._backoff.reset()
                except ResourceGone as gone:
                    log.info(
                        "watch of %s from resourceVersion %s expired (%s); re-listing",
                        self.scope,
                        self.resource_version,
                        gone,
                    )
                    self.resource_version = None
                except KubernetesError as exc:
                    log.warning("watch of %s interrupted: %s; reconnecting", self.scope, exc)
                    await self._backoff.wait(stop)
        except Stopped:
            pass
        log.info("watch of %s stopped", self.scope)

    async def _relist(self, stop: asyncio.Event) -> None:
        items, resource_version = await until_stopped(stop, self._api.list(self.resource, self.namespace))
        self.lists += 1
        log.info("listed %d %s at resourceVersion %s", len(items), self.scope, resource_version)
        # In creation order, not the API server's (by name): a lane's BackupRequests created while nobody
        # watched enter it in the order they were applied (creationTimestamp, then the resourceVersion they were
        # created at, which is still theirs while no status was written; handled ones decide nothing anyway).
        for item in sorted(items, key=creation_order):
            await self._handle(WatchEvent("ADDED", item), stop)
        self.resource_version = resource_version
        self.synced = True

    async def _follow(self, stop: asyncio.Event) -> None:
        """One watch request, until the server ends it; every handled change moves the resourceVersion."""
        assert self.resource_version is not None
        self.watches += 1
        stream: AsyncGenerator[WatchEvent, None] = self._api.watch(self.resource, self.namespace, self.resource_version)
        try:
            while True:
                try:
                    event = await until_stopped(stop, anext(stream))
                except StopAsyncIteration:
                    return
                if event.type != "BOOKMARK":
                    await self._handle(event, stop)
                self.resource_version = event.resource_version or self.resource_version
        finally:
            await stream.aclose()

    async def _handle(self, event: WatchEvent, stop: asyncio.Event) -> None:
        while True:
            try:
                await until_stopped(stop, self._handler(event))
            except _RETRYABLE as exc:
                meta: Json = event.object.get("metadata") or {}
                name = f"{meta.get('namespace')}/{meta.get('name')}"
                log.warning("handling %s %s failed: %r; retrying", event.type, name, exc)
                await self._handler_backoff.wait(stop)
                continue
            self._handler_backoff.reset()
            return
