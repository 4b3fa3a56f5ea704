"""A Cloud SQL database restored from a backup's SQL export: a new database (``databases.insert``), then
``instances.import`` of the ``.sql.gz`` into it (``importContext: {uri, database, fileType: SQL}``). Cloud SQL runs
both and reads the file from GCS itself; we only poll its operations, so no database byte passes through us.

Neither call takes a client token, and Cloud SQL keeps no label or comment on a database, so this restore's work
is recognised by a **claim**: before it creates the database, the restore writes
``restores/<restoreId>.json`` into the backup's folder (create-only), naming the instance and the database.

* a database is ours when this restore's claim exists: a restart after ``databases.insert`` adopts it. One that
  exists without our claim is never written into, nor deleted;
* an IMPORT operation is ours when it loads the plan's export into that database (``importContext.uri`` and
  ``.database``) and Cloud SQL inserted it after the claim was written — an older restore's import of the same file
  into a database of the same name does not count. A restart finds it (``operations.list`` of the instance) and
  polls it; it never starts a second one.

Cloud SQL runs one admin operation per instance at a time: a 409 ``operationInProgress`` is retried, never a
failure (``sqladmin.SqlAdmin.submit``). Cloud SQL cannot rename a database, so a restore never replaces a live
one: ``overwrite`` is refused at validation.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lc2backup.domain.restoring import DatabasePlan
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.names import InstanceRef
from lc2backup.providers.gcp.settings import GcpSettings
from lc2backup.providers.gcp.sqladmin import SqlAdmin, operation_failure
from lc2backup.providers.gcp.storage import GcsBuckets
from lc2backup.runtime.crashpoints import crash_point

NO_OVERWRITE = (
    "Cloud SQL cannot rename a database, so a restore cannot keep {target} aside and never replaces it: restore"
    " into a new database (leave out overwrite), then point Liferay's JDBC URL at it"
)


def claim_location(artefact: str, restore_id: str) -> str:
    """``restores/<restoreId>.json`` in the backup's folder: the export is ``<folder>/database/<name>.sql.gz``."""
    return f"{artefact.rsplit('/', 2)[0]}/restores/{restore_id}.json"


def _time(stamp: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Target:
    ref: InstanceRef
    database: str

    def __str__(self) -> str:
        return f"{self.ref.path}/databases/{self.database}"


class CloudSqlImports:
    def __init__(self, clients: GcpClients, settings: GcpSettings) -> None:
        self._admin = SqlAdmin(clients, settings)
        self._buckets = GcsBuckets(clients)
        self._poll = settings.restore_poll_seconds

    async def target(self, plan: DatabasePlan) -> Target:
        return Target(await self._admin.instance(plan.target_instance), plan.target_database)

    async def claim(self, restore_id: str, plan: DatabasePlan) -> datetime | None:
        """When this restore's claim was written (GCS's clock), or None: nothing of this restore exists."""
        return await self._buckets.created(claim_location(plan.artefact, restore_id))

    async def exists(self, target: Target) -> bool:
        found = await self._admin.get(
            self._admin.call("cloudsql.databases.get", target.ref),
            lambda s: s.databases().get(
                project=target.ref.project, instance=target.ref.instance, database=target.database
            ),
        )
        return found is not None

    async def check(self, restore_id: str, plan: DatabasePlan, problems: list[str], checks: list[str]) -> None:
        """Validation: the export is there with its recorded size, the instance exists, the database is new (or
        ours: a restart after creating it), and no overwrite is asked for."""
        size = await self._buckets.size(plan.artefact)
        if size is None:
            problems.append(f"SQL export {plan.artefact} is missing")
        elif plan.size_bytes is not None and size != plan.size_bytes:
            problems.append(f"SQL export {plan.artefact} is {size} bytes, {plan.size_bytes} at backup time")
        target = await self.target(plan)
        if plan.overwrite:
            problems.append(NO_OVERWRITE.format(target=target))
            return
        await self._admin.describe(target.ref)  # a wrong instance is named here
        exists, claimed = await self.exists(target), await self.claim(restore_id, plan)
        if exists and claimed is None:
            problems.append(f"database {target} already exists: restore into a new database (another databaseName)")
        elif not problems:
            checks.append(f"database {target} is {'ours (this restore created it)' if exists else 'new'}")

    # the restore

    async def restore(self, restore_id: str, plan: DatabasePlan) -> dict[str, Any]:
        """Create the database (unless ours already) and import the export into it, or poll the import this restore
        started before a crash; the DONE operation. A failed one fails the branch with Cloud SQL's message."""
        target = await self.target(plan)
        if plan.overwrite:
            raise PermanentProviderError(NO_OVERWRITE.format(target=target))
        claimed = await self.claim(restore_id, plan)
        operation = await self.find_import(target, plan, claimed) if claimed is not None else None
        if operation is None:
            await self._create(restore_id, plan, target, claimed)
            crash_point("restore:database-created")  # test-only (lc2backup.runtime.crashpoints)
            context = {
                "kind": "sql#importContext",
                "fileType": "SQL",
                "uri": plan.artefact,
                "database": target.database,
            }
            operation = await self._admin.submit(
                self._admin.call("cloudsql.instances.import", target.ref),
                lambda s: s.instances().import_(
                    project=target.ref.project, instance=target.ref.instance, body={"importContext": context}
                ),
            )
        done = await self.wait(target.ref, operation, "restore:import-running")
        failure = operation_failure(done)
        if failure:
            raise PermanentProviderError(f"Cloud SQL import of {plan.artefact} into {target} failed: {failure}")
        return done

    async def _create(self, restore_id: str, plan: DatabasePlan, target: Target, claimed: datetime | None) -> None:
        if await self.exists(target):
            if claimed is None:
                raise PermanentProviderError(
                    f"database {target} was created while the restore ran, not by restore {restore_id}: it is left"
                    " alone; restore into another database"
                )
            return  # created by this restore before a restart
        if claimed is None:
            body = {"restoreId": restore_id, "instance": target.ref.path, "database": target.database}
            claim = claim_location(plan.artefact, restore_id)
            await self._buckets.put(claim, json.dumps(body).encode(), "application/json", once=True)
        try:
            operation = await self._admin.submit(
                self._admin.call("cloudsql.databases.create", target.ref),
                lambda s: s.databases().insert(
                    project=target.ref.project, instance=target.ref.instance, body={"name": target.database}
                ),
            )
        except PermanentProviderError:
            if await self.exists(target):  # created by this restore's insert, answered after all
                return
            raise
        failure = operation_failure(await self.wait(target.ref, operation))
        if failure and not await self.exists(target):
            raise PermanentProviderError(f"Cloud SQL could not create database {target}: {failure}")

    async def find_import(self, target: Target, plan: DatabasePlan, since: datetime) -> dict[str, Any] | None:
        """This restore's IMPORT of the export into the target database: inserted after its claim was written."""

        def ours(op: dict[str, Any]) -> bool:
            context = op.get("importContext") or {}
            inserted = _time(op.get("insertTime"))
            return (
                op.get("operationType") == "IMPORT"
                and context.get("uri") == plan.artefact
                and context.get("database") == target.database
                and (inserted is None or inserted >= since)
            )

        return await self._admin.find("operations", target.ref, ours)

    async def wait(self, ref: InstanceRef, operation: dict[str, Any], running: str | None = None) -> dict[str, Any]:
        """Poll ``operation`` until Cloud SQL says DONE (``running``: a crash point reached while it RUNs)."""
        while operation.get("status") != "DONE":
            if running is not None and operation.get("status") == "RUNNING":
                crash_point(running)  # test-only
            await asyncio.sleep(self._poll)
            operation = await self._admin.operation(ref.project, str(operation["name"]))
        return operation

    # verification and scratch removal

    async def verify(self, restore_id: str, plan: DatabasePlan, findings: list[str], checks: list[str]) -> None:
        target = await self.target(plan)
        claimed = await self.claim(restore_id, plan)
        operation = await self.find_import(target, plan, claimed) if claimed is not None else None
        if operation is None:
            findings.append(f"no import of {plan.artefact} into {target} by restore {restore_id} on {target.ref.path}")
        elif operation.get("status") != "DONE" or operation_failure(operation):
            state = operation_failure(operation) or str(operation.get("status"))
            findings.append(f"Cloud SQL import {operation.get('name')} into {target}: {state}")
        else:
            checks.append(f"Cloud SQL import {operation.get('name')} of {plan.artefact} into {target}: DONE, no error")
        if await self.exists(target):
            checks.append(f"database {target} exists")
        else:
            findings.append(f"database {target} does not exist")
        checks.append(
            "Cloud SQL's SQL export carries no per-table figures and the restorer has no connection to the database:"
            " table rows and checksums are not compared (Cloud SQL ran every statement of the dump without error)"
        )

    async def remove(self, restore_id: str, plan: DatabasePlan) -> list[str]:
        """Delete the scratch database if this restore's claim names it (then the claim); what was removed."""
        target = await self.target(plan)
        claim = claim_location(plan.artefact, restore_id)
        if await self.claim(restore_id, plan) is None:
            return []
        removed = []
        if await self.exists(target):
            operation = await self._admin.submit(
                self._admin.call("cloudsql.databases.delete", target.ref),
                lambda s: s.databases().delete(
                    project=target.ref.project, instance=target.ref.instance, database=target.database
                ),
            )
            failure = operation_failure(await self.wait(target.ref, operation))
            if failure:
                raise PermanentProviderError(f"Cloud SQL could not delete the scratch database {target}: {failure}")
            removed.append(f"database {target}")
        bucket, _, key = claim.removeprefix("gs://").partition("/")
        await self._buckets.delete(bucket, [key])
        return removed
