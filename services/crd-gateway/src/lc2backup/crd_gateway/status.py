"""The ``.status`` of our CRs as a projection of the event log, patched on the status subresource.

Every event arrives on the durable consumer ``crd-gateway-status``; ``StatusRouter`` hands it to the projector of
its aggregate's kind (a restore's events to the RestoreRequest projector, every other event to the BackupRequest
one). The projector folds the aggregate and, when it came from Kubernetes, brings the CR named by its source (the
BackupRequested / RestoreRequested event's) up to date, and records a Kubernetes Event on a major transition. The
watch side calls ``refresh`` when a CR is new or its status is not the current one. A CR only ever shows the
aggregate its uid names (``Projection.aggregate_of``): one whose source names it with another uid, or another id,
is skipped, as is a CR that is gone (a new CR with the same name is another request).

Writes are guarded by the CR's ``resourceVersion``, and a status that reflects a later event than our load
makes us load again first, so concurrent handlers and replicas cannot move a status backwards. (A status
claiming a sequence the log does not have is overwritten: the log is the truth.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from nats.aio.msg import Msg

from lc2backup.crd_gateway.crd import BACKUP_REQUESTS, RESTORE_REQUESTS, CustomResource
from lc2backup.crd_gateway.errors import KubernetesUnavailable, ResourceConflict, ResourceNotFound
from lc2backup.crd_gateway.kube import Json, KubeApi
from lc2backup.crd_gateway.projection import Transition, identity, merge_patch, status_of, transition_of
from lc2backup.crd_gateway.recording import EventRecorder
from lc2backup.crd_gateway.restore_projection import restore_status_of, restore_transition_of
from lc2backup.domain import BackupState, RequestSource, backup_id_for_resource, fold
from lc2backup.domain.events import RESTORE_EVENT_TYPES
from lc2backup.domain.restore_state import RestoreState, fold_restore
from lc2backup.domain.restoring import restore_id_for_resource
from lc2backup.domain.wire import Envelope
from lc2backup.eventing import EventStore, Fold, Repository, RetryLater, consuming_span
from lc2backup.runtime import KeyedLocks

log = logging.getLogger(__name__)
ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


class Folded(Protocol):
    """What the projector reads of any fold: where the request came from and how far the log went."""

    @property
    def source(self) -> RequestSource | None: ...

    @property
    def version(self) -> int: ...


S = TypeVar("S", bound=Folded)


@dataclass(frozen=True)
class Projection(Generic[S]):
    """One kind of CR and the aggregate it becomes: how to fold it, render its status and name its Events."""

    resource: CustomResource
    fold: Fold[S]
    aggregate_of: Callable[[str], str]  # the CR's uid -> the id of the aggregate it became
    status: Callable[[S, int | None, Mapping[str, object], datetime], Json]
    transition: Callable[[str, S], Transition | None]


BACKUPS: Projection[BackupState] = Projection(BACKUP_REQUESTS, fold, backup_id_for_resource, status_of, transition_of)
RESTORES: Projection[RestoreState] = Projection(
    RESTORE_REQUESTS, fold_restore, restore_id_for_resource, restore_status_of, restore_transition_of
)


class StatusProjector(Generic[S]):
    """Brings the CRs of one kind up to date with their aggregates' folds."""

    def __init__(
        self,
        store: EventStore,
        api: KubeApi,
        recorder: EventRecorder,
        projection: Projection[S],
        *,
        retry_delay: float = 2.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._aggregates = Repository(store, projection.fold)
        self._api = api
        self._recorder = recorder
        self._projection = projection
        self._kind = projection.resource.kind
        self._retry_delay = retry_delay
        self._clock = clock
        self._locks = KeyedLocks()

    @property
    def resource(self) -> CustomResource:
        return self._projection.resource

    async def on_envelope(self, envelope: Envelope) -> None:
        """Bring the CR of this event's aggregate up to date (raises KubernetesUnavailable to retry)."""
        async with self._locks.hold(envelope.backup_id):
            projected = await self._project(envelope.backup_id)
        if projected is None:
            return
        state, resource = projected
        transition = self._projection.transition(envelope.type, state)
        if transition is not None:
            await self._recorder.record(self._kind, resource, transition, str(envelope.id), envelope.occurred_at)

    async def refresh(self, resource: Json) -> None:
        """Watch side: re-project a CR whose status is not what the fold says (lost, or not yet written)."""
        _, _, uid, _ = identity(resource)
        aggregate_id = self._projection.aggregate_of(uid)
        async with self._locks.hold(aggregate_id):
            await self._project(aggregate_id, resource)

    async def exists(self, uid: str) -> bool:
        """Has the aggregate this CR's uid names any event (requested, or rejected)?"""
        state, _ = await self._aggregates.load(self._projection.aggregate_of(uid))
        return state.version > 0

    def _owned(self, aggregate_id: str, state: S, uid: str) -> bool:
        """The CR of ``uid`` shows this aggregate: its uid names it, and the source (if any) is that CR."""
        source = state.source
        from_it = source is None or (source.kind == "kubernetes" and source.uid == uid)
        return from_it and self._projection.aggregate_of(uid) == aggregate_id

    async def _project(self, aggregate_id: str, resource: Json | None = None) -> tuple[S, Json] | None:
        """Patch the CR's status to the fold; returns the state and the CR, or None if there is nothing to do."""
        reloaded = False
        for _ in range(ATTEMPTS):
            state, _ = await self._aggregates.load(aggregate_id)
            source = state.source
            if state.version == 0 or (resource is None and (source is None or source.kind != "kubernetes")):
                return None
            try:
                if resource is None:
                    assert source is not None
                    resource = await self._api.get(self.resource, source.namespace or "", source.name or "")
                namespace, name, uid, generation = identity(resource)
                if not self._owned(aggregate_id, state, uid):
                    log.info("%s %s/%s is not the one %s came from", self._kind, namespace, name, aggregate_id)
                    return None
                current = resource.get("status") or {}
                if int(current.get("lastEventSequence") or 0) > state.version and not reloaded:
                    reloaded, resource = True, None  # written from a later load than ours: load again, once
                    continue
                desired = self._projection.status(state, generation, current, self._clock())
                patch = merge_patch(current, desired)
                if not patch:
                    return state, resource
                version = (resource.get("metadata") or {}).get("resourceVersion")
                body = {"metadata": {"resourceVersion": version}, "status": patch}
                updated = await self._api.patch_status(self.resource, namespace, name, body)
                log.info(
                    "%s %s/%s status: %s",
                    self._kind,
                    namespace,
                    name,
                    desired.get("state"),
                    extra={"backup_id": aggregate_id},
                )
                return state, updated
            except ResourceNotFound:
                log.info("%s of %s is gone; its history and artefacts stay", self._kind, aggregate_id)
                return None
            except ResourceConflict:
                resource = None  # changed meanwhile: read it again
        raise RetryLater(f"status of {self._kind} {aggregate_id} kept conflicting", delay=self._retry_delay)


RESTORE_TYPES = frozenset(cls.event_type for cls in RESTORE_EVENT_TYPES)


class StatusRouter:
    """The ``crd-gateway-status`` consumer's handler: every event to the projector of its aggregate's kind."""

    def __init__(
        self,
        store: EventStore,
        backups: StatusProjector[BackupState],
        restores: StatusProjector[RestoreState],
        *,
        retry_delay: float = 2.0,
    ) -> None:
        self._store = store
        self._backups = backups
        self._restores = restores
        self._retry_delay = retry_delay

    async def on_event(self, msg: Msg) -> None:
        envelope = self._store.delivered(msg).envelope  # not a readable event: dead-lettered with the reason
        with consuming_span("status", envelope.trace, backup_id=envelope.backup_id):
            try:
                if envelope.type in RESTORE_TYPES:
                    await self._restores.on_envelope(envelope)
                else:
                    await self._backups.on_envelope(envelope)
            except KubernetesUnavailable as exc:
                raise RetryLater(f"kubernetes API unavailable: {exc}", delay=self._retry_delay) from exc
