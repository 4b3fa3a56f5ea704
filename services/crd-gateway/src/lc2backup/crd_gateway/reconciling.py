"""What a watched CR change does: a new CR becomes its request (a backup, a restore) and gets its status.

Each kind says how (``Requests``): a BackupRequest enters the intake NATS commands use (``BackupRequests``), a
RestoreRequest becomes a restore command for the restorer (``lc2backup.crd_gateway.restoring``). Either way the
CR's uid names the request, so a re-list after a restart, a duplicate watch event or a second replica decides
nothing new. Our own status patches come back as MODIFIED events; they carry a generation already handled, so
they cost nothing. The spec cannot change after creation (the CRD's ``self == oldSelf`` rule, enforced by the
API server), so one CR is one request. Deleting a CR deletes no history and no artefact: the backup or restore
stays, and the projection API still serves it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from lc2backup.crd_gateway.crd import BACKUP_REQUESTS, CustomResource
from lc2backup.crd_gateway.handlers import IntakeHandler
from lc2backup.crd_gateway.kube import Json, WatchEvent
from lc2backup.crd_gateway.projection import identity, intake_of
from lc2backup.crd_gateway.status import StatusProjector
from lc2backup.domain import BackupState, backup_id_for_resource, parse_intake

log = logging.getLogger(__name__)


class Requests(Protocol):
    """One kind of CR: how a new one becomes its request, and how its status is brought up to date."""

    @property
    def resource(self) -> CustomResource: ...

    def request_id(self, uid: str) -> str:
        """The id of the request the CR with this uid became."""
        ...

    async def submit(self, resource: Json) -> None:
        """Make the CR's request, unless it was made before (idempotent: called on every re-list)."""
        ...

    async def refresh(self, resource: Json) -> None:
        """Bring the CR's status up to date with its request's fold."""
        ...


class BackupRequests:
    """A BackupRequest enters the intake NATS commands use (``IntakeHandler.submit``): the append expects an empty
    subject, so a BackupRequest submitted before finds its backup there and decides nothing."""

    resource = BACKUP_REQUESTS

    def __init__(self, intake: IntakeHandler, status: StatusProjector[BackupState]) -> None:
        self._intake = intake
        self._status = status

    def request_id(self, uid: str) -> str:
        return backup_id_for_resource(uid)

    async def submit(self, resource: Json) -> None:
        await self._intake.submit(parse_intake(intake_of(resource)))

    async def refresh(self, resource: Json) -> None:
        await self._status.refresh(resource)


class Reconciler:
    def __init__(self, requests: Requests) -> None:
        self._requests = requests
        self._handled: dict[str, int | None] = {}  # uid -> generation that went through submit and refresh

    async def on_watch_event(self, event: WatchEvent) -> None:
        namespace, name, uid, generation = identity(event.object)
        if not uid:
            return
        kind = self._requests.resource.kind
        if event.type == "DELETED":
            self._handled.pop(uid, None)
            log.info(
                "%s %s/%s deleted; %s, its history and artefacts are kept",
                kind,
                namespace,
                name,
                self._requests.request_id(uid),
            )
            return
        status = event.object.get("status") or {}
        if self._handled.get(uid) == generation and status.get("observedGeneration") == generation:
            return
        await self._requests.submit(event.object)
        await self._requests.refresh(event.object)
        self._handled[uid] = generation
