"""What a watched BackupRequest change does: a new CR enters the intake and gets its status.

The intake is the one NATS commands use (``IntakeHandler.submit``): the CR's uid names the backup and the
append expects an empty subject, so a re-list after a restart, a duplicate watch event or a second replica
decides nothing new. Our own status patches come back as MODIFIED events; they carry a generation already
handled, so they cost nothing. The spec cannot change after creation (the CRD's ``self == oldSelf`` rule,
enforced by the API server), so one CR is one request. Deleting a CR deletes no history and no artefact: the backup stays, and the
projection API still serves it.
"""

from __future__ import annotations

import logging

from lc2backup.crd_gateway.handlers import IntakeHandler
from lc2backup.crd_gateway.kube import WatchEvent
from lc2backup.crd_gateway.projection import identity, intake_of
from lc2backup.crd_gateway.status import StatusProjector
from lc2backup.domain import backup_id_for_resource, parse_intake

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, intake: IntakeHandler, status: StatusProjector) -> None:
        self._intake = intake
        self._status = status
        self._handled: dict[str, int | None] = {}  # uid -> generation that went through intake and refresh

    async def on_watch_event(self, event: WatchEvent) -> None:
        namespace, name, uid, generation = identity(event.object)
        if not uid:
            return
        if event.type == "DELETED":
            self._handled.pop(uid, None)
            log.info(
                "BackupRequest %s/%s deleted; backup %s, its history and artefacts are kept",
                namespace,
                name,
                backup_id_for_resource(uid),
            )
            return
        status = event.object.get("status") or {}
        if self._handled.get(uid) == generation and status.get("observedGeneration") == generation:
            return
        await self._intake.submit(parse_intake(intake_of(event.object)))
        await self._status.refresh(event.object)
        self._handled[uid] = generation
