"""Cloud SQL Admin calls as every GCP step makes them: one request off the loop with its errors translated
(naming the instance and the permission), Cloud SQL's 409 ``operationInProgress`` retried, and an earlier
delivery's backup run or operation found by what it did.

Cloud SQL runs one admin operation per instance at a time and answers 409 ``operationInProgress`` to a second
one: that is retried with backoff inside the call, then durably — never a failure. No call takes a client token,
so a step looks for what an earlier delivery may have started before it starts anything (``find``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lc2backup.providers.errors import TransientProviderError
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.errors import GcpCall, http_error_parts, is_busy
from lc2backup.providers.gcp.names import InstanceRef
from lc2backup.providers.gcp.settings import GcpSettings

LIST_PAGES = 5  # backup runs / operations scanned for ours (newest first: an earlier delivery's is near the top)
FIX = "check spec.database.instanceId and LC2_GCP__PROJECT"


def operation_failure(operation: dict[str, Any]) -> str | None:
    """The API's message when a DONE operation failed (``error.errors[]``), else None."""
    errors = (operation.get("error") or {}).get("errors") or []
    if not errors:
        return None
    return "; ".join(f"{e.get('code') or 'error'}: {e.get('message') or '(no message)'}" for e in errors)


class SqlAdmin:
    def __init__(self, clients: GcpClients, settings: GcpSettings) -> None:
        self._clients = clients
        self._settings = settings

    def call(self, permission: str, ref: InstanceRef | str, fix: str = FIX) -> GcpCall:
        resource = f"Cloud SQL instance {ref.path!r}" if isinstance(ref, InstanceRef) else ref
        return GcpCall(permission, resource, fix, self._settings.transient_retry_seconds)

    async def instance(self, instance_id: str) -> InstanceRef:
        """``instance_id`` as a request names it, completed with the configured (or the credentials') project."""
        project = await self._clients.run(lambda: self._clients.project)
        return InstanceRef.parse(instance_id, project)

    async def request(self, call: GcpCall, build: Callable[[Any], Any]) -> dict[str, Any]:
        try:
            return await self._clients.sql(build)
        except Exception as exc:
            raise call.translate(exc) from exc

    async def get(self, call: GcpCall, build: Callable[[Any], Any]) -> dict[str, Any] | None:
        """A resource, or None where Cloud SQL answers 404."""
        try:
            return await self._clients.sql(build)
        except Exception as exc:
            if http_error_parts(exc)[0] == 404:  # the discovery client's HttpError
                return None
            raise call.translate(exc) from exc

    async def submit(self, call: GcpCall, build: Callable[[Any], Any]) -> dict[str, Any]:
        """Start an admin operation, retrying Cloud SQL's 409 (another operation runs) with backoff; when it
        stays busy, the step is retried durably (transient), never failed."""
        delay = self._settings.busy_backoff_seconds
        for attempt in range(self._settings.busy_retries + 1):
            try:
                return await self._clients.sql(build)
            except Exception as exc:
                if not is_busy(exc):
                    raise call.translate(exc) from exc
                if attempt == self._settings.busy_retries:
                    raise TransientProviderError(
                        f"{call.resource} is busy with another operation (HTTP 409 operationInProgress): will retry",
                        self._settings.transient_retry_seconds,
                    ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    async def describe(self, ref: InstanceRef) -> dict[str, Any]:
        return await self.request(
            self.call("cloudsql.instances.get", ref),
            lambda s: s.instances().get(project=ref.project, instance=ref.instance),
        )

    async def find(
        self, collection: str, ref: InstanceRef, match: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """The newest item of ``backupRuns.list`` or ``operations.list`` of the instance that ``match``es."""
        call = self.call("cloudsql.backupRuns.list" if collection == "backupRuns" else "cloudsql.instances.get", ref)

        def listing(token: str | None) -> Callable[[Any], Any]:
            return lambda s: getattr(s, collection)().list(
                project=ref.project, instance=ref.instance, maxResults=100, pageToken=token
            )

        token: str | None = None
        for _ in range(LIST_PAGES):
            page = await self.request(call, listing(token))
            for item in page.get("items", []):
                if match(item):
                    found: dict[str, Any] = item
                    return found
            token = page.get("nextPageToken")
            if not token:
                return None
        return None

    async def operation(self, project: str, name: str) -> dict[str, Any]:
        return await self.request(
            self.call("cloudsql.instances.get", f"Cloud SQL operation 'projects/{project}/operations/{name}'"),
            lambda s: s.operations().get(project=project, operation=name),
        )
