"""The database side of an Azure restore: Azure restores the backup's flexible server into a NEW server at the
point its on-demand backup completed; we ask once, follow it, read it back, and delete a verification's.

``servers.begin_create_or_update`` (PostgreSQL; ``servers.begin_create`` on MySQL) with ``createMode:
PointInTimeRestore``, ``sourceServerResourceId`` the backup's server and the point in time (``pointInTimeUTC``;
MySQL ``restorePointInTime``) the on-demand backup's ``completedTime`` as Azure reports it. The new server is the
plan's target (default ``<source>-r<first 8 hex of the restore id>``, beside the source in its resource group), in
the source's region, tagged ``lc2-restore-id: <restoreId>`` with the backup and the point in time it is made from.

Idempotent under the restore id: the target is read by name first; a server tagged with this restore is adopted
and followed (a restart after a crash creates nothing), one without the tag is never touched and fails the restore
naming it. While this process follows the create it reads Azure's error from the create's long-running operation;
an adopted server is followed by its ``state`` until ``Ready``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from lc2backup.domain.restoring import DatabasePlan
from lc2backup.providers.azure.clients import AzureClients
from lc2backup.providers.azure.errors import AzureCall
from lc2backup.providers.azure.names import BackupRef, ServerRef
from lc2backup.providers.azure.settings import AzureSettings
from lc2backup.providers.errors import PermanentProviderError, TransientProviderError
from lc2backup.runtime.crashpoints import crash_point

log = logging.getLogger(__name__)

RESTORE_TAG = "lc2-restore-id"
FROM_TAG = "lc2-restored-from"  # the on-demand backup's resource id
TIME_TAG = "lc2-point-in-time"
CREATOR = (
    "the built-in role 'Contributor' on the target's resource group (flexibleServers/write, /read, /delete) and"
    " 'Reader' on the backup's server"
)
READER = "the built-in role 'Reader' on the backup's flexible server"
_CREATE = {"postgres": "begin_create_or_update", "mysql": "begin_create"}
_POINT_IN_TIME = {"postgres": "pointInTimeUTC", "mysql": "restorePointInTime"}
_BROKEN = frozenset({"disabled", "dropping", "inaccessible"})  # a server in these states will not become Ready


def _state(server: Any) -> str:
    state = getattr(server, "state", None)
    return str(getattr(state, "value", state) or "").lower()


def _tags(server: Any) -> dict[str, str]:
    return dict(getattr(server, "tags", None) or {})


def refs(plan: DatabasePlan) -> tuple[BackupRef, ServerRef]:
    """(the on-demand backup restored, the new server), refusing the backup's own server as the target."""
    backup = BackupRef.parse(plan.artefact)
    target = backup.server.sibling(plan.target_instance)
    if target.id.lower() == backup.server.id.lower():
        raise PermanentProviderError(
            f"{target.id} is the backup's own server: a point-in-time restore makes a new server, never over the"
            " source; name a new one in spec.database.instanceId"
        )
    return backup, target


class ServerRestore:
    def __init__(self, clients: AzureClients, settings: AzureSettings) -> None:
        self._clients = clients
        self._settings = settings

    def _call(self, resource: str, grant: str = CREATOR) -> AzureCall:
        return AzureCall(grant, resource, "", self._settings.transient_retry_seconds)

    async def _server(self, ref: ServerRef, grant: str = CREATOR) -> Any | None:
        client = await self._clients.management(ref.engine, ref.subscription)
        call = self._call(f"flexible server {ref.id}", grant)
        return await call.find(lambda: client.servers.get(ref.resource_group, ref.server))

    async def point_in_time(self, backup: BackupRef) -> datetime.datetime:
        """The on-demand backup's completion time, as Azure reports it."""
        ref = backup.server
        client = await self._clients.management(ref.engine, ref.subscription)
        call = self._call(f"on-demand backup {backup.id}", READER)
        group, server = ref.resource_group, ref.server
        if ref.engine == "mysql":
            found = await call.find(lambda: client.long_running_backups.get(group, server, backup.name))
            when = getattr(found, "completed_time", None)
        else:
            found = await call.find(lambda: client.backups_automatic_and_on_demand.get(group, server, backup.name))
            when = getattr(getattr(found, "properties", None), "completed_time", None)
        if found is None:
            raise PermanentProviderError(
                f"the on-demand backup {backup.id} no longer exists (its server's retention ended, or it was deleted):"
                " restore the backup's long-term-retention dump instead (docs/azure.md)"
            )
        if not isinstance(when, datetime.datetime):
            raise PermanentProviderError(f"the on-demand backup {backup.id} has not completed: Azure reports no time")
        return when

    @staticmethod
    def _require_ours(server: Any, ref: ServerRef, restore_id: str) -> None:
        tag = _tags(server).get(RESTORE_TAG)
        if tag != restore_id:
            made_by = f"its tag {RESTORE_TAG} is {tag}" if tag else f"it has no tag {RESTORE_TAG}"
            raise PermanentProviderError(
                f"flexible server {ref.id} already exists and is not this restore's ({made_by}): name a new server in"
                " spec.database.instanceId, or delete that one first"
            )

    # validation

    async def check(self, restore_id: str, plan: DatabasePlan, checks: list[str]) -> list[str]:
        """The backup's server and on-demand backup exist; the target is free, or this restore's."""
        backup, target = refs(plan)
        if await self._server(backup.server, READER) is None:
            return [
                f"the backup's flexible server {backup.server.id} no longer exists: a point-in-time restore needs it;"
                " restore the backup's long-term-retention dump instead (docs/azure.md)"
            ]
        when = await self.point_in_time(backup)
        existing = await self._server(target)
        if existing is not None:
            self._require_ours(existing, target, restore_id)
            checks.append(f"flexible server {target.id} is this restore's ({RESTORE_TAG}): it is followed, not made")
        else:
            checks.append(f"flexible server {target.id} is free: the on-demand backup {backup.name} restores into it")
        checks.append(f"the on-demand backup {backup.id} exists, completed {when.isoformat()}")
        return []

    # the restore

    async def restore(self, restore_id: str, plan: DatabasePlan) -> None:
        backup, target = refs(plan)
        poller = None
        existing = await self._server(target)
        if existing is not None:
            self._require_ours(existing, target, restore_id)
            log.info("flexible server %s of restore %s exists: following it", target.id, restore_id)
        else:
            poller = await self._create(restore_id, backup, target)
        await self._until_ready(restore_id, backup, target, poller)

    async def _create(self, restore_id: str, backup: BackupRef, target: ServerRef) -> Any | None:
        """Ask Azure for the new server; its create's poller, or None when it turned out to exist (and be ours)."""
        from azure.core.exceptions import ResourceExistsError

        when = await self.point_in_time(backup)
        source = await self._server(backup.server, READER)
        if source is None:
            raise PermanentProviderError(f"the backup's flexible server {backup.server.id} no longer exists")
        engine = target.engine
        body = {
            "location": source.location,
            "tags": {RESTORE_TAG: restore_id, FROM_TAG: backup.id, TIME_TAG: when.isoformat()},
            "properties": {
                "createMode": "PointInTimeRestore",
                "sourceServerResourceId": backup.server.id,
                _POINT_IN_TIME[engine]: when.isoformat(),
            },
        }
        client = await self._clients.management(engine, target.subscription)
        create = getattr(client.servers, _CREATE[engine])
        call = self._call(f"point-in-time restore of {backup.id} into flexible server {target.id}")
        try:
            poller = await create(target.resource_group, target.server, body)
        except ResourceExistsError as exc:  # created meanwhile: a create sent before a crash, seen late
            existing = await self._server(target)
            if existing is None:
                raise TransientProviderError(f"{call.resource}: Azure answered Conflict ({exc}): will retry") from exc
            self._require_ours(existing, target, restore_id)
            return None
        except Exception as exc:
            raise call.translate(exc) from exc
        log.info("restoring %s at %s into flexible server %s (restore %s)", backup.id, when, target.id, restore_id)
        return poller

    async def _until_ready(self, restore_id: str, backup: BackupRef, target: ServerRef, poller: Any | None) -> None:
        """Follow the create (its operation while we hold it, else the server's state) until the server is Ready."""
        call = self._call(f"point-in-time restore of {backup.id} into flexible server {target.id}")

        async def held() -> Any:
            return poller

        while True:
            if poller is not None:
                status, detail = await call.look(held)
                if status == "failed":
                    raise PermanentProviderError(f"Azure could not restore {backup.id} into {target.id}: {detail}")
                if status == "succeeded":
                    poller = None
            if poller is None:
                server = await self._server(target)
                if server is None:
                    raise PermanentProviderError(
                        f"flexible server {target.id} of restore {restore_id} is gone: its create failed or it was"
                        " deleted (see the resource group's Activity log)"
                    )
                state = _state(server)
                if state == "ready":
                    return
                if state in _BROKEN:
                    raise PermanentProviderError(f"flexible server {target.id} of restore {restore_id} is {state}")
            crash_point("restore:server-pending")  # test-only (lc2backup.runtime.crashpoints): killed mid-create
            await asyncio.sleep(self._settings.restore_poll_seconds)

    # verification and removal

    async def verify(self, restore_id: str, plan: DatabasePlan, findings: list[str], checks: list[str]) -> None:
        """The new server is Ready, made by this restore from the backup's server at its point in time (read from
        Resource Manager: the state, the tags its create set, the source Azure reports where it does)."""
        backup, target = refs(plan)
        server = await self._server(target)
        if server is None:
            findings.append(f"flexible server {target.id} does not exist")
            return
        when = (await self.point_in_time(backup)).isoformat()
        tags = _tags(server)
        found = []
        if _state(server) != "ready":
            found.append(f"flexible server {target.id} is {_state(server) or 'in no state'}, not Ready")
        if tags.get(RESTORE_TAG) != restore_id:
            found.append(
                f"flexible server {target.id} was not made by this restore ({RESTORE_TAG}: {tags.get(RESTORE_TAG)})"
            )
        if tags.get(FROM_TAG, "").lower() != backup.id.lower() or tags.get(TIME_TAG) != when:
            found.append(
                f"flexible server {target.id} was restored from {tags.get(FROM_TAG)} at {tags.get(TIME_TAG)}, not from"
                f" {backup.id} at {when}"
            )
        reported = getattr(server, "source_server_resource_id", None)
        if reported and str(reported).lower() != backup.server.id.lower():
            found.append(f"Azure reports flexible server {target.id} restored from {reported}, not {backup.server.id}")
        findings += found
        if not found:
            how = "as Azure reports" if reported else "Azure reports no source: by its create's tags"
            checks.append(
                f"flexible server {target.id} is Ready, restored from {backup.server.id} at {when} (the completion of"
                f" the on-demand backup {backup.name}; {how})"
            )
        checks.append(
            "the restored databases' contents are not compared: a managed restore of a flexible server has no figures"
            " taken at backup time (Azure restores its own backup of the whole server)"
        )

    async def remove(self, restore_id: str, plan: DatabasePlan) -> list[str]:
        """Delete the new server if it is this restore's; what was removed."""
        _, target = refs(plan)
        server = await self._server(target)
        if server is None or _tags(server).get(RESTORE_TAG) != restore_id:
            return []
        client = await self._clients.management(target.engine, target.subscription)
        call = self._call(f"flexible server {target.id}")
        poller = await call.run(lambda: client.servers.begin_delete(target.resource_group, target.server))

        async def held() -> Any:
            return poller

        while True:
            status, detail = await call.look(held)
            if status == "failed":
                raise PermanentProviderError(f"Azure could not delete flexible server {target.id}: {detail}")
            if status == "succeeded":
                return [f"flexible server {target.id}"]
            await asyncio.sleep(self._settings.restore_poll_seconds)
