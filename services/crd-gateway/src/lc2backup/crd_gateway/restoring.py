"""RestoreRequest CRs become restore commands: the restorer plans, checks and runs them like any other.

crd-gateway does not decide a restore (the restorer's intake does: the backup Succeeded, the target is free or
confirmed, one restore per target), it only asks for one per CR. The command carries the restore id the CR's uid
names and the CR as its ``source``; it is published only while the restore has no event yet, with a
``Nats-Msg-Id`` of its own, and the restorer's intake appends to an empty subject only: a re-list, a restart, a
duplicate watch event or a second replica never makes a second restore.
"""

from __future__ import annotations

import logging

import nats.errors
from nats.js import JetStreamContext

from lc2backup.crd_gateway.crd import RESTORE_REQUESTS
from lc2backup.crd_gateway.errors import CommandNotPublished
from lc2backup.crd_gateway.kube import Json
from lc2backup.crd_gateway.projection import identity
from lc2backup.crd_gateway.restore_projection import restore_command_of
from lc2backup.crd_gateway.status import StatusProjector
from lc2backup.domain.restore_state import RestoreState
from lc2backup.domain.restoring import restore_id_for_resource
from lc2backup.eventing import Topology

log = logging.getLogger(__name__)


class RestoreRequests:
    """The RestoreRequest kind for the reconciler (``reconciling.Requests``)."""

    resource = RESTORE_REQUESTS

    def __init__(self, js: JetStreamContext, topology: Topology, status: StatusProjector[RestoreState]) -> None:
        self._js = js
        self._topology = topology
        self._status = status

    def request_id(self, uid: str) -> str:
        return restore_id_for_resource(uid)

    async def submit(self, resource: Json) -> None:
        namespace, name, uid, _ = identity(resource)
        if await self._status.exists(uid):
            return  # asked for before: the restorer has decided it (requested, or rejected)
        command = restore_command_of(resource)
        restore_id = str(command.restore_id)
        try:
            ack = await self._js.publish(
                self._topology.restore_subject,
                command.model_dump_json(by_alias=True, exclude_none=True).encode(),
                stream=self._topology.commands_stream,
                headers={"Nats-Msg-Id": f"k8s:restore:{uid}"},
            )
        except nats.errors.Error as exc:
            raise CommandNotPublished(f"restore command of RestoreRequest {namespace}/{name}: {exc!r}") from exc
        log.info(
            "RestoreRequest %s/%s: restore %s requested%s",
            namespace,
            name,
            restore_id,
            " (a duplicate of the one sent before)" if ack.duplicate else "",
            extra={"backup_id": restore_id},
        )

    async def refresh(self, resource: Json) -> None:
        await self._status.refresh(resource)
