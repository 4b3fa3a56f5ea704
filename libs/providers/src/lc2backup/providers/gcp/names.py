"""What our GCP operations are called and how ``spec.database.instanceId`` names a Cloud SQL instance.

Neither Cloud SQL nor Storage Transfer takes a client token, so the names are the idempotency keys: the
backup run's description, the export's ``gs://`` URI (unique per backup) and the transfer job's name all
derive from the backup id, and a redelivered step looks them up before it starts anything. A restore's transfer
job derives from the restore id the same way (``transferJobs/lc2-restore-<restore id>``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from lc2backup.providers.errors import PermanentProviderError

DESCRIPTION_PREFIX = "lc2-backup "
RESTORE_PREFIX = "lc2-restore "
JOB_PREFIX = "transferJobs/lc2-"
JOB_MAX = 128
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")
_INSTANCE = re.compile(r"^[a-z][a-z0-9-]{0,96}$")


def description_of(backup_id: str) -> str:
    """The description our backup run and transfer job carry: how a redelivery finds the run it started."""
    return f"{DESCRIPTION_PREFIX}{backup_id}"


def restore_description(restore_id: str) -> str:
    """The description of a restore's transfer job."""
    return f"{RESTORE_PREFIX}{restore_id}"


def transfer_job_name(backup_id: str) -> str:
    """``transferJobs/lc2-<backup id>``: at most 128 characters, ends in a letter or digit, never ``…/OPI``."""
    slug = _NOT_ALLOWED.sub("-", backup_id).strip("-_")
    if not slug or len(JOB_PREFIX) + len(slug) > JOB_MAX:
        digest = hashlib.sha256(backup_id.encode()).hexdigest()[:16]
        slug = f"{slug[: JOB_MAX - len(JOB_PREFIX) - 17].strip('-_')}-{digest}".lstrip("-")
    return f"{JOB_PREFIX}{slug}"


def restore_job_name(restore_id: str) -> str:
    """``transferJobs/lc2-restore-<restore id>``: never a backup's job name (a backup id is a UUID)."""
    return transfer_job_name(f"restore-{restore_id}")


@dataclass(frozen=True)
class InstanceRef:
    """A Cloud SQL instance: ``name`` (in the configured project), ``project:name``, the connection name
    ``project:region:name``, or ``projects/<project>/instances/<name>``."""

    project: str
    instance: str

    @classmethod
    def parse(cls, instance_id: str, default_project: str | None) -> InstanceRef:
        project: str | None
        if instance_id.startswith("projects/"):
            parts = instance_id.split("/")
            if len(parts) != 4 or parts[2] != "instances":
                raise PermanentProviderError(
                    f"spec.database.instanceId {instance_id!r}: expected projects/<project>/instances/<instance>"
                )
            project, instance = parts[1], parts[3]
        else:
            head, _, instance = instance_id.rpartition(":")
            project = head.split(":")[0] if head else default_project
            if head.count(":") > 1:
                raise PermanentProviderError(
                    f"spec.database.instanceId {instance_id!r}: expected <instance>, <project>:<instance> or the "
                    "connection name <project>:<region>:<instance>"
                )
        if not project:
            raise PermanentProviderError(
                f"spec.database.instanceId {instance_id!r} names no project, and none is configured: set "
                "LC2_GCP__PROJECT in db-export or write <project>:<region>:<instance>"
            )
        if not _INSTANCE.match(instance):
            raise PermanentProviderError(
                f"spec.database.instanceId {instance_id!r}: {instance!r} is not a Cloud SQL instance name "
                "(lowercase letters, digits and hyphens, starting with a letter)"
            )
        return cls(project, instance)

    @property
    def path(self) -> str:
        return f"projects/{self.project}/instances/{self.instance}"
