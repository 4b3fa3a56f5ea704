"""RDS instance and Aurora cluster snapshots: find the source, create under a deterministic name, poll.

``spec.database.instanceId`` may name an RDS instance, an Aurora cluster, or a member instance of a
cluster (snapshotted through its cluster, since RDS refuses instance snapshots of cluster members); an
ARN names the kind directly. Statuses are compared lowercase: RDS documents them lowercase, but the
field is free text and exports use uppercase, so nothing here trusts the case.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lc2backup.providers.aws.clients import RdsClient
from lc2backup.providers.aws.errors import RdsCall, rds_code
from lc2backup.providers.aws.identifiers import SourceRef, snapshot_identifier, snapshot_kind
from lc2backup.providers.aws.settings import AwsSettings
from lc2backup.providers.base import BackupJob, SnapshotStatus
from lc2backup.providers.errors import PermanentProviderError

# the terminal failures of botocore's db_snapshot_available waiter, plus the generic ones
FAILED = frozenset({"failed", "deleted", "deleting", "incompatible-restore", "incompatible-parameters", "error"})
_INSTANCE_FIX = "check spec.database.instanceId and LC2_AWS__REGION"


class RdsSnapshots:
    def __init__(self, rds: RdsClient, settings: AwsSettings) -> None:
        self._rds = rds
        self._settings = settings

    def _call(self, action: str, resource: str, fix: str = "") -> RdsCall:
        s = self._settings
        return RdsCall(action, resource, s.region, fix, s.transient_retry_seconds)

    async def resolve(self, instance_id: str) -> SourceRef:
        """The instance or cluster to snapshot (a cluster member resolves to its cluster)."""
        try:
            ref = SourceRef.parse(instance_id)
        except ValueError as exc:
            raise PermanentProviderError(f"spec.database.instanceId: {exc}") from exc
        if ref.region and ref.region != self._settings.region:
            raise PermanentProviderError(
                f"{instance_id} is in region {ref.region} but the aws provider runs in {self._settings.region}: "
                "RDS snapshots and exports are regional (set LC2_AWS__REGION)"
            )
        if ref.kind == "cluster":
            return ref
        call = self._call("DescribeDBInstances", f"RDS instance {ref.identifier!r}", _INSTANCE_FIX)
        try:
            found = await self._rds.describe_db_instances(DBInstanceIdentifier=ref.identifier)
        except ClientError as exc:
            if rds_code(exc) != "DBInstanceNotFound" or ref.kind == "instance":
                raise call.translate(exc) from exc
            return await self._resolve_cluster(ref.identifier)
        except Exception as exc:
            raise call.translate(exc) from exc
        instance = found["DBInstances"][0]
        if instance.get("DBClusterIdentifier"):
            return SourceRef(str(instance["DBClusterIdentifier"]), "cluster")
        return SourceRef(ref.identifier, "instance")

    async def _resolve_cluster(self, identifier: str) -> SourceRef:
        resource = f"RDS instance or Aurora cluster {identifier!r}"
        call = self._call("DescribeDBClusters", resource, _INSTANCE_FIX)
        try:
            await self._rds.describe_db_clusters(DBClusterIdentifier=identifier)
        except Exception as exc:
            raise call.translate(exc) from exc
        return SourceRef(identifier, "cluster")

    async def start(self, job: BackupJob) -> str:
        """Create the snapshot (or find the one an earlier delivery created); returns its identifier."""
        source = await self.resolve(job.spec.database.instance_id)
        cluster = source.kind == "cluster"
        snapshot_id = snapshot_identifier(job.backup_id, "cluster" if cluster else "instance")
        tags = [
            {"Key": "lc2-backup-id", "Value": job.backup_id},
            {"Key": "lc2-project", "Value": job.spec.project_id},
            {"Key": "lc2-environment", "Value": job.spec.environment},
        ]
        kind = "Aurora cluster" if cluster else "RDS instance"
        action = "CreateDBClusterSnapshot" if cluster else "CreateDBSnapshot"
        call = self._call(action, f"{kind} {source.identifier!r}", _INSTANCE_FIX)
        try:
            if cluster:
                await self._rds.create_db_cluster_snapshot(
                    DBClusterSnapshotIdentifier=snapshot_id, DBClusterIdentifier=source.identifier, Tags=tags
                )
            else:
                await self._rds.create_db_snapshot(
                    DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier=source.identifier, Tags=tags
                )
        except ClientError as exc:
            if rds_code(exc) not in ("DBSnapshotAlreadyExists", "DBClusterSnapshotAlreadyExists"):
                raise call.translate(exc) from exc
            found = await self.describe_raw(snapshot_id)  # started by an earlier delivery: it must be ours
            owner = str(found.get("DBClusterIdentifier" if cluster else "DBInstanceIdentifier") or "")
            if owner.lower() != source.identifier.lower():  # RDS stores identifiers lowercase
                raise PermanentProviderError(
                    f"snapshot {snapshot_id} already exists for {owner!r}, not {source.identifier!r}"
                ) from exc
        except Exception as exc:
            raise call.translate(exc) from exc
        return snapshot_id

    async def describe_raw(self, snapshot_id: str, fix: str = "it was deleted while the backup ran") -> dict[str, Any]:
        cluster = snapshot_kind(snapshot_id) == "cluster"
        call = self._call(
            "DescribeDBClusterSnapshots" if cluster else "DescribeDBSnapshots", f"snapshot {snapshot_id}", fix
        )
        try:
            if cluster:
                resp = await self._rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot_id)
                items = resp.get("DBClusterSnapshots", [])
            else:
                resp = await self._rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)
                items = resp.get("DBSnapshots", [])
        except Exception as exc:
            raise call.translate(exc) from exc
        if not items:
            raise PermanentProviderError(f"snapshot {snapshot_id} not found in region {self._settings.region}: {fix}")
        found: dict[str, Any] = items[0]
        return found

    async def arn(self, snapshot_id: str) -> str:
        found = await self.describe_raw(snapshot_id)
        return str(found.get("DBClusterSnapshotArn") or found["DBSnapshotArn"])

    async def check(self, snapshot_id: str) -> SnapshotStatus:
        found = await self.describe_raw(snapshot_id)
        status = str(found.get("Status", "")).lower()
        percent = found.get("PercentProgress")
        if status in FAILED:
            return SnapshotStatus(done=False, error=f"RDS reports the snapshot {status}")
        if status != "available":
            return SnapshotStatus(done=False, percent=int(percent) if percent is not None else None)
        return SnapshotStatus(
            done=True,
            location=str(found.get("DBClusterSnapshotArn") or found.get("DBSnapshotArn") or snapshot_id),
            engine=found.get("Engine"),
            engine_version=found.get("EngineVersion"),
            percent=100,
        )
