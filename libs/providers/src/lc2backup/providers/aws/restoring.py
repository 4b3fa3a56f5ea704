"""The aws provider's restore: the backup's RDS snapshot restored into a new instance (an Aurora cluster snapshot
into a new cluster with one instance), the document library copied back server-side (``providers.s3restore``).

RDS has no client token for a restore: the target identifier is the idempotency key, and the tag
``lc2-restore-id=<restoreId>``, set by the restore call itself, says whose a target is. Every call first
describes the target: absent, it is restored; present and tagged with this restore's id, it is adopted and
polled (a restorer killed after the call, a restore call whose answer was lost: ``…AlreadyExists`` is looked up
the same way); present without the tag, it fails naming it. So a restore repeated from the start after a crash
starts nothing twice.

A DB instance's description has no field naming the snapshot it was restored from, so the restore call also
tags it ``lc2-restored-from=<snapshot id>``; a verification reads that back from RDS with the instance's engine.
The restored database's contents cannot be compared here: a managed snapshot records no row figures and the
restorer does not log in to the restored database (the verdict says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.metadata import MetadataDocument
from lc2backup.domain.restoring import DatabasePlan, DocumentLibraryPlan, RestorePlan
from lc2backup.providers.aws.clients import RdsClient, rds_client
from lc2backup.providers.aws.errors import RdsCall, rds_code
from lc2backup.providers.aws.identifiers import snapshot_kind
from lc2backup.providers.aws.settings import AwsSettings
from lc2backup.providers.aws.snapshots import RdsSnapshots
from lc2backup.providers.errors import PermanentProviderError, TransientProviderError
from lc2backup.providers.restore_checks import ArtefactCheck
from lc2backup.providers.restoring import LibraryRestored, Progress, Verdict
from lc2backup.providers.s3 import S3Client, s3_client
from lc2backup.providers.s3restore import S3Library

log = logging.getLogger(__name__)

RESTORE_TAG = "lc2-restore-id"
FROM_TAG = "lc2-restored-from"
AURORA_INSTANCE_CLASS = "db.r6g.large"  # offered for Aurora MySQL and PostgreSQL alike
# statuses a restored instance or cluster never leaves for "available" on its own
FAILED = frozenset(
    {
        "failed",
        "deleting",
        "deleted",
        "stopped",
        "stopping",
        "restore-error",
        "storage-full",
        "incompatible-restore",
        "incompatible-parameters",
        "incompatible-network",
        "incompatible-option-group",
        "inaccessible-encryption-credentials",
    }
)
TRANSIENT_POLLS = 10  # consecutive throttled describes absorbed while polling before the restore pauses
Kind = Literal["instance", "cluster"]


@dataclass(frozen=True)
class _Api:
    label: str  # what a message calls it
    describe: str
    action: str
    key: str
    items: str
    not_found: str
    status: str


_API: dict[Kind, _Api] = {
    "instance": _Api(
        "RDS instance",
        "describe_db_instances",
        "DescribeDBInstances",
        "DBInstanceIdentifier",
        "DBInstances",
        "DBInstanceNotFound",
        "DBInstanceStatus",
    ),
    "cluster": _Api(
        "Aurora cluster",
        "describe_db_clusters",
        "DescribeDBClusters",
        "DBClusterIdentifier",
        "DBClusters",
        "DBClusterNotFound",
        "Status",
    ),
}


@dataclass(frozen=True)
class SnapshotRef:
    """The snapshot a plan restores, as the backup recorded it: its ARN, or its identifier."""

    identifier: str
    cluster: bool

    @classmethod
    def of(cls, artefact: str) -> SnapshotRef:
        if artefact.startswith("arn:"):
            parts = artefact.split(":")
            if len(parts) != 7 or parts[5] not in ("snapshot", "cluster-snapshot") or not parts[6]:
                raise PermanentProviderError(
                    f"{artefact} is not the ARN of an RDS snapshot (…:snapshot:<id>) or an Aurora cluster snapshot"
                    " (…:cluster-snapshot:<id>)"
                )
            return cls(parts[6], parts[5] == "cluster-snapshot")
        return cls(artefact, snapshot_kind(artefact) == "cluster")


def writer_identifier(cluster: str) -> str:
    """The one instance a restored Aurora cluster gets (an identifier is at most 63 characters)."""
    return f"{cluster[:61].rstrip('-')}-1"


def _targets(plan: DatabasePlan, snapshot: SnapshotRef) -> list[tuple[Kind, str]]:
    """What a restore creates, in order: the instance; or the cluster, then its instance."""
    if snapshot.cluster:
        return [("cluster", plan.target_instance), ("instance", writer_identifier(plan.target_instance))]
    return [("instance", plan.target_instance)]


def _tags(found: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in found.get("TagList") or []}


def _what(kind: Kind, identifier: str) -> str:
    return f"{_API[kind].label} {identifier!r}"


def _status(kind: Kind, found: dict[str, Any]) -> str:
    return str(found.get(_API[kind].status, "")).lower()


def _not_ours(kind: Kind, identifier: str, restore_id: str, found: dict[str, Any]) -> str | None:
    owner = _tags(found).get(RESTORE_TAG)
    if owner == restore_id:
        return None
    whose = f"restore {owner}'s" if owner else f"not made by a restore (no tag {RESTORE_TAG})"
    return (
        f"{_what(kind, identifier)} already exists and is {whose}, not restore {restore_id}'s: restore into a new"
        " instance (spec.database.instanceId, or none for a generated name)"
    )


class AwsRestorer:
    name = "aws"
    restores = frozenset({"snapshot"})  # the Parquet export is for analytics, not restorable

    def __init__(self, rds: RdsClient, s3: S3Client, settings: AwsSettings) -> None:
        self._rds = rds
        self._settings = settings
        self._snapshots = RdsSnapshots(rds, settings)
        self._library = S3Library(
            s3, copy_workers=settings.copy_workers, progress_interval=settings.progress_interval_seconds
        )

    def _call(self, action: str, resource: str, fix: str = "") -> RdsCall:
        s = self._settings
        return RdsCall(action, resource, s.region, fix, s.transient_retry_seconds)

    async def _describe(self, kind: Kind, identifier: str) -> dict[str, Any] | None:
        api = _API[kind]
        call = self._call(api.action, _what(kind, identifier))
        try:
            answer = await getattr(self._rds, api.describe)(**{api.key: identifier})
        except ClientError as exc:
            if rds_code(exc) == api.not_found:
                return None
            raise call.translate(exc) from exc
        except Exception as exc:
            raise call.translate(exc) from exc
        items: list[dict[str, Any]] = answer.get(api.items) or []
        return items[0] if items else None

    async def _snapshot(self, snapshot: SnapshotRef) -> dict[str, Any]:
        return await self._snapshots.describe_raw(
            snapshot.identifier, "it was deleted after the backup; restore another backup"
        )

    # validation

    async def validate(self, restore_id: str, plan: RestorePlan) -> tuple[list[str], list[str]]:
        problems: list[str] = []
        checks: list[str] = []
        if plan.metadata_location:
            await self._library.check_metadata(plan, self._lists_the_snapshot(plan), problems, checks)
        if plan.database is not None:
            try:
                await self._check_database(restore_id, plan.database, problems, checks)
            except PermanentProviderError as exc:
                problems.append(str(exc))
        if plan.document_library is not None:
            await self._library.check_target(plan.document_library, problems, checks)
        return problems, checks

    @staticmethod
    def _lists_the_snapshot(plan: RestorePlan) -> ArtefactCheck:
        def check(doc: MetadataDocument) -> str | None:
            assert plan.database is not None
            snapshot = doc.database.snapshot
            if snapshot is None or plan.database.artefact not in (snapshot.location, snapshot.snapshot_id):
                return f"does not list the snapshot {plan.database.artefact} the log recorded"
            return None

        return check

    async def _check_database(
        self, restore_id: str, plan: DatabasePlan, problems: list[str], checks: list[str]
    ) -> None:
        snapshot = SnapshotRef.of(plan.artefact)
        found = await self._snapshot(snapshot)
        status = str(found.get("Status", "")).lower()
        if status != "available":
            problems.append(f"snapshot {snapshot.identifier} is {status or 'of no status'}, not available")
        else:
            checks.append(f"snapshot {snapshot.identifier} is available ({found.get('Engine')})")
        for kind, identifier in _targets(plan, snapshot):
            target = await self._describe(kind, identifier)
            if target is None:
                checks.append(f"{_what(kind, identifier)} is new")
            elif (problem := _not_ours(kind, identifier, restore_id, target)) is not None:
                problems.append(problem)
            else:
                checks.append(f"{_what(kind, identifier)} is this restore's (tag {RESTORE_TAG})")

    # the database branch

    async def restore_database(self, restore_id: str, plan: DatabasePlan, progress: Progress) -> int:
        snapshot = SnapshotRef.of(plan.artefact)
        tags = [{"Key": RESTORE_TAG, "Value": restore_id}, {"Key": FROM_TAG, "Value": snapshot.identifier}]
        s = self._settings
        network: dict[str, Any] = {}
        if s.restore_db_subnet_group_name:
            network["DBSubnetGroupName"] = s.restore_db_subnet_group_name
        if s.restore_vpc_security_group_ids:
            network["VpcSecurityGroupIds"] = s.restore_vpc_security_group_ids
        seen: list[str] = []

        async def saw(status: str) -> None:  # RDS reports no percentage for a restore: each new status is progress
            seen.append(status)
            await progress(len(seen), 0)

        target = plan.target_instance
        if not snapshot.cluster:
            klass = {"DBInstanceClass": s.restore_instance_class} if s.restore_instance_class else {}
            await self._create(
                "instance",
                target,
                restore_id,
                "RestoreDBInstanceFromDBSnapshot",
                lambda: self._rds.restore_db_instance_from_db_snapshot(
                    DBInstanceIdentifier=target,
                    DBSnapshotIdentifier=snapshot.identifier,
                    Tags=tags,
                    **klass,
                    **network,
                ),
            )
            await self._wait("instance", target, saw)
            return 0
        engine = str((await self._snapshot(snapshot)).get("Engine"))
        await self._create(
            "cluster",
            target,
            restore_id,
            "RestoreDBClusterFromSnapshot",
            lambda: self._rds.restore_db_cluster_from_snapshot(
                DBClusterIdentifier=target, SnapshotIdentifier=snapshot.identifier, Engine=engine, Tags=tags, **network
            ),
        )
        await self._wait("cluster", target, saw)
        writer = writer_identifier(target)
        await self._create(
            "instance",
            writer,
            restore_id,
            "CreateDBInstance",
            lambda: self._rds.create_db_instance(
                DBInstanceIdentifier=writer,
                DBClusterIdentifier=target,
                Engine=engine,
                DBInstanceClass=s.restore_instance_class or AURORA_INSTANCE_CLASS,
                Tags=tags,
            ),
        )
        await self._wait("instance", writer, saw)
        return 0

    async def _create(
        self, kind: Kind, identifier: str, restore_id: str, action: str, start: Callable[[], Awaitable[object]]
    ) -> None:
        """Start the restore of ``identifier``, or adopt the one this restore started before."""
        found = await self._describe(kind, identifier)
        if found is None:
            call = self._call(action, _what(kind, identifier), "check the snapshot and the LC2_AWS__RESTORE_* settings")
            try:
                await start()
                log.info("%s: %s started", action, _what(kind, identifier))
                return
            except ClientError as exc:
                if rds_code(exc) not in ("DBInstanceAlreadyExists", "DBClusterAlreadyExists"):
                    raise call.translate(exc) from exc
            except Exception as exc:
                raise call.translate(exc) from exc
            found = await self._describe(kind, identifier)  # made meanwhile: by an earlier call of this restore?
            if found is None:
                raise TransientProviderError(f"{_what(kind, identifier)} exists and then did not: will look again")
        problem = _not_ours(kind, identifier, restore_id, found)
        if problem is not None:
            raise PermanentProviderError(problem)
        log.info("%s is restore %s's: following it", _what(kind, identifier), restore_id)

    async def _wait(self, kind: Kind, identifier: str, saw: Callable[[str], Awaitable[None]]) -> None:
        """Poll until ``available``; a failed status fails with RDS's reason, throttling is waited out."""
        last, throttled = "", 0
        while True:
            try:
                found = await self._describe(kind, identifier)
                throttled = 0
            except TransientProviderError:
                throttled += 1
                if throttled > TRANSIENT_POLLS:
                    raise
                await asyncio.sleep(self._settings.restore_poll_interval_seconds)
                continue
            if found is None:
                raise PermanentProviderError(f"{_what(kind, identifier)} disappeared while it was being restored")
            status = _status(kind, found)
            if status == "available":
                return
            if status in FAILED:
                reason = await self._reason(kind, identifier, found)
                raise PermanentProviderError(f"{_what(kind, identifier)} is {status}: {reason}")
            if status != last:
                last = status
                await saw(status)
            await asyncio.sleep(self._settings.restore_poll_interval_seconds)

    async def _reason(self, kind: Kind, identifier: str, found: dict[str, Any]) -> str:
        """What RDS says about a failed target: its status infos and its latest events."""
        said = [str(info.get("Message") or info.get("Status")) for info in found.get("StatusInfos") or []]
        source = "db-instance" if kind == "instance" else "db-cluster"
        with contextlib.suppress(Exception):  # the status alone already fails the branch; the events add the why
            answer = await self._rds.describe_events(SourceType=source, SourceIdentifier=identifier, Duration=1440)
            said += [str(event.get("Message")) for event in (answer.get("Events") or [])[-3:]]
        return "; ".join(said) or "RDS gives no reason (see the RDS events of the instance)"

    # the document-library branch

    async def restore_document_library(
        self, restore_id: str, plan: DocumentLibraryPlan, progress: Progress
    ) -> LibraryRestored:
        return await self._library.restore(plan, progress)

    # verification

    async def verify(self, restore_id: str, plan: RestorePlan) -> Verdict:
        findings: list[str] = []
        checks: list[str] = []
        summary = VerificationSummary()
        if plan.database is not None:
            await self._verify_database(plan.database, findings, checks)
        if plan.document_library is not None:
            summary = await self._library.verify(plan.document_library, summary, findings, checks)
        return Verdict(summary, findings, checks)

    async def _verify_database(self, plan: DatabasePlan, findings: list[str], checks: list[str]) -> None:
        snapshot = SnapshotRef.of(plan.artefact)
        try:
            source = await self._snapshot(snapshot)
        except PermanentProviderError as exc:
            findings.append(str(exc))
            return
        engine = (source.get("Engine"), source.get("EngineVersion"))
        for kind, identifier in _targets(plan, snapshot):
            what = _what(kind, identifier)
            found = await self._describe(kind, identifier)
            if found is None:
                findings.append(f"{what} does not exist")
                continue
            before = len(findings)
            if (status := _status(kind, found)) != "available":
                findings.append(f"{what} is {status}, not available")
            restored_from = _tags(found).get(FROM_TAG)
            if restored_from != snapshot.identifier:
                findings.append(
                    f"{what} was not restored from snapshot {snapshot.identifier} (tag {FROM_TAG}:"
                    f" {restored_from or 'absent'})"
                )
            if (found.get("Engine"), found.get("EngineVersion")) != engine:
                findings.append(
                    f"{what} runs {found.get('Engine')} {found.get('EngineVersion')}, the snapshot {engine[0]}"
                    f" {engine[1]}"
                )
            if len(findings) == before:
                checks.append(
                    f"{what} is available, restored from snapshot {snapshot.identifier} (its tag {FROM_TAG}, set by"
                    f" the restore call), {engine[0]} {engine[1]} as the snapshot"
                )
        checks.append(
            "database contents not compared: a managed snapshot records no row figures, and the restorer does not"
            " log in to the restored database"
        )

    async def write_verdict(self, restore_id: str, plan: RestorePlan, body: bytes) -> str:
        return await self._library.write_verdict(restore_id, plan, body)

    async def remove_scratch(self, restore_id: str, plan: RestorePlan) -> list[str]:
        removed: list[str] = []
        if plan.database is not None:
            snapshot = SnapshotRef.of(plan.database.artefact)
            for kind, identifier in reversed(_targets(plan.database, snapshot)):  # a cluster's instance first
                if await self._delete(kind, identifier, restore_id, member=snapshot.cluster):
                    removed.append(_what(kind, identifier))
        if plan.document_library is not None:
            removed.append(await self._library.remove(plan.document_library))
        return removed

    async def _delete(self, kind: Kind, identifier: str, restore_id: str, *, member: bool) -> bool:
        """Delete a target of this restore (never another's); False when there is none."""
        found = await self._describe(kind, identifier)
        if found is None or _not_ours(kind, identifier, restore_id, found) is not None:
            return False
        if _status(kind, found) == "deleting":
            return True
        action = "DeleteDBInstance" if kind == "instance" else "DeleteDBCluster"
        call = self._call(action, _what(kind, identifier))
        try:
            if kind == "cluster":
                await self._rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
            elif member:  # an Aurora instance: its cluster holds the data and the backups
                await self._rds.delete_db_instance(DBInstanceIdentifier=identifier)
            else:
                await self._rds.delete_db_instance(
                    DBInstanceIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
                )
        except ClientError as exc:
            if rds_code(exc) == _API[kind].not_found:
                return True
            raise call.translate(exc) from exc
        except Exception as exc:
            raise call.translate(exc) from exc
        return True


@contextlib.asynccontextmanager
async def open_restore_provider(settings: AwsSettings) -> AsyncIterator[AwsRestorer]:
    """The restorer with its RDS client and the S3 client the document library is copied back with."""
    async with rds_client(settings) as rds, s3_client(settings.s3()) as s3:
        yield AwsRestorer(rds, s3, settings)
