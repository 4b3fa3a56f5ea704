"""BackupRequest ``.status`` as a projection of the event log, patched on the status subresource.

Every backup event arrives on the durable consumer ``crd-gateway-status``; the backup is folded and, when it
came from Kubernetes, its CR's status is brought up to date (and a Kubernetes Event recorded on a major
transition). The watch side calls ``refresh`` when a CR is new or its status is not the current one. The CR named by the backup's
source is skipped when it is gone or its uid differs (a new CR with the same name is another backup).

Writes are guarded by the CR's ``resourceVersion``, and a status that reflects a later event than our load
makes us load again first, so concurrent handlers and replicas cannot move a status backwards. (A status
claiming a sequence the log does not have is overwritten: the log is the truth.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.msg import Msg

from lc2backup.crd_gateway.errors import KubernetesUnavailable, ResourceConflict, ResourceNotFound
from lc2backup.crd_gateway.kube import Json, KubeApi
from lc2backup.crd_gateway.projection import identity, merge_patch, status_of, transition_of
from lc2backup.crd_gateway.recording import EventRecorder
from lc2backup.domain import BackupState, backup_id_for_resource, fold
from lc2backup.eventing import EventStore, Repository, RetryLater, consuming_span
from lc2backup.runtime import KeyedLocks

log = logging.getLogger(__name__)
ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


def from_kubernetes(state: BackupState) -> bool:
    return state.exists and state.source is not None and state.source.kind == "kubernetes"


class StatusProjector:
    def __init__(
        self,
        store: EventStore,
        api: KubeApi,
        recorder: EventRecorder,
        *,
        retry_delay: float = 2.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._backups = Repository(store, fold)
        self._api = api
        self._recorder = recorder
        self._retry_delay = retry_delay
        self._clock = clock
        self._locks = KeyedLocks()

    async def on_event(self, msg: Msg) -> None:
        """Consumer handler: bring the CR of this event's backup up to date."""
        envelope = self._store.delivered(msg).envelope  # not a readable event: dead-lettered with the reason
        with consuming_span("status", envelope.trace, backup_id=envelope.backup_id):
            try:
                async with self._locks.hold(envelope.backup_id):
                    projected = await self._project(envelope.backup_id)
                if projected is None:
                    return
                state, resource = projected
                transition = transition_of(envelope.type, state)
                if transition is not None:
                    await self._recorder.record(resource, transition, str(envelope.id), envelope.occurred_at)
            except KubernetesUnavailable as exc:
                raise RetryLater(f"kubernetes API unavailable: {exc}", delay=self._retry_delay) from exc

    async def refresh(self, resource: Json) -> None:
        """Watch side: re-project a CR whose status is not what the fold says (lost, or not yet written)."""
        _, _, uid, _ = identity(resource)
        backup_id = backup_id_for_resource(uid)
        async with self._locks.hold(backup_id):
            await self._project(backup_id, resource)

    async def _project(self, backup_id: str, resource: Json | None = None) -> tuple[BackupState, Json] | None:
        """Patch the CR's status to the fold; returns the state and the CR, or None if there is nothing to do."""
        reloaded = False
        for _ in range(ATTEMPTS):
            state, _ = await self._backups.load(backup_id)
            if not from_kubernetes(state):
                return None
            source = state.source
            assert source is not None and source.namespace and source.name
            try:
                if resource is None:
                    resource = await self._api.get(source.namespace, source.name)
                namespace, name, uid, generation = identity(resource)
                if uid != source.uid:
                    log.info("BackupRequest %s/%s is not the one backup %s came from", namespace, name, backup_id)
                    return None
                current = resource.get("status") or {}
                if int(current.get("lastEventSequence") or 0) > state.version and not reloaded:
                    reloaded, resource = True, None  # written from a later load than ours: load again, once
                    continue
                desired = status_of(state, generation, current, self._clock())
                patch = merge_patch(current, desired)
                if not patch:
                    return state, resource
                version = (resource.get("metadata") or {}).get("resourceVersion")
                body = {"metadata": {"resourceVersion": version}, "status": patch}
                updated = await self._api.patch_status(namespace, name, body)
                log.info(
                    "BackupRequest %s/%s status: %s",
                    namespace,
                    name,
                    desired.get("state"),
                    extra={"backup_id": backup_id},
                )
                return state, updated
            except ResourceNotFound:
                log.info("BackupRequest of backup %s is gone; its history and artefacts stay", backup_id)
                return None
            except ResourceConflict:
                resource = None  # changed meanwhile: read it again
        raise RetryLater(f"status of backup {backup_id} kept conflicting", delay=self._retry_delay)
