"""Names on Azure: which flexible server a BackupRequest means, the deterministic backup name of a backup, the
on-demand backup a restore starts from and the new server it makes.

``spec.database.instanceId`` is the server's resource id
(``/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.DBforPostgreSQL/flexibleServers/<name>``, or
``Microsoft.DBforMySQL`` for MySQL; the leading ``/`` optional) or, for PostgreSQL, ``<resourceGroup>/<server>``
with ``LC2_AZURE__SUBSCRIPTION_ID``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass

from lc2backup.providers.errors import PermanentProviderError

NAMESPACES = {"microsoft.dbforpostgresql": "postgres", "microsoft.dbformysql": "mysql"}
_SHORT = re.compile(r"^([A-Za-z0-9._()-]{1,90})/([a-z0-9][a-z0-9-]{1,61}[a-z0-9])$")
_FORMS = (
    "the server's resource id (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.DBforPostgreSQL"
    "/flexibleServers/<name>, or Microsoft.DBforMySQL) or <resourceGroup>/<server> with LC2_AZURE__SUBSCRIPTION_ID"
)
_BACKUP_NAME = 60  # on-demand and long-term-retention backup names: letters, digits, '-' and '_'
_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")  # a flexible server's name (its DNS label)
_BACKUP_KINDS = {"postgres": "backups", "mysql": "backupsv2"}


@dataclass(frozen=True)
class ServerRef:
    subscription: str
    resource_group: str
    server: str
    engine: str  # postgres | mysql

    @classmethod
    def parse(cls, instance_id: str, subscription: str | None) -> ServerRef:
        parts = instance_id.strip("/").split("/")
        lowered = [p.lower() for p in parts]
        shape = ("subscriptions", "resourcegroups", "providers", "flexibleservers")
        if len(parts) == 8 and tuple(lowered[0:8:2]) == shape and lowered[5] in NAMESPACES:
            return cls(parts[1], parts[3], parts[7], NAMESPACES[lowered[5]])
        match = _SHORT.match(instance_id)
        if match and len(parts) == 2:
            if not subscription:
                raise PermanentProviderError(
                    f"spec.database.instanceId {instance_id!r} names no subscription: give the server's resource id or"
                    " set LC2_AZURE__SUBSCRIPTION_ID"
                )
            return cls(subscription, match.group(1), match.group(2), "postgres")
        raise PermanentProviderError(f"spec.database.instanceId {instance_id!r} is not a flexible server: use {_FORMS}")

    @property
    def id(self) -> str:
        namespace = "Microsoft.DBforPostgreSQL" if self.engine == "postgres" else "Microsoft.DBforMySQL"
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{namespace}"
            f"/flexibleServers/{self.server}"
        )

    def sibling(self, target: str) -> ServerRef:
        """The server ``target`` names, beside this one: a bare name is in this server's resource group; a resource
        id or ``<resourceGroup>/<server>`` names its own (in this subscription, of this engine)."""
        if "/" not in target:
            if not _SERVER_NAME.match(target):
                raise PermanentProviderError(
                    f"spec.database.instanceId {target!r} is not a flexible server name (3-63 lower-case letters,"
                    " digits and '-', neither first nor last)"
                )
            return ServerRef(self.subscription, self.resource_group, target, self.engine)
        ref = ServerRef.parse(target, self.subscription)
        if len(target.strip("/").split("/")) == 2:  # <resourceGroup>/<server>: of this engine
            ref = dataclasses.replace(ref, engine=self.engine)
        if ref.engine != self.engine or ref.subscription.lower() != self.subscription.lower():
            raise PermanentProviderError(
                f"spec.database.instanceId {target!r} is not a {self.engine} flexible server of subscription"
                f" {self.subscription}: a backup of {self.id} restores into a new server of the same engine there"
            )
        return ref


@dataclass(frozen=True)
class BackupRef:
    """An on-demand backup of a flexible server, by its resource id (``<server id>/backups/<name>``, MySQL
    ``backupsV2``): what a restore starts from."""

    server: ServerRef
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> BackupRef:
        parts = resource_id.strip("/").split("/")
        if len(parts) == 10:
            server = ServerRef.parse("/".join(parts[:8]), None)
            if parts[8].lower() == _BACKUP_KINDS[server.engine]:
                return cls(server, parts[9])
        raise PermanentProviderError(
            f"{resource_id!r} is not the resource id of a flexible server's on-demand backup"
            " (<server id>/backups/<name>, or backupsV2 on MySQL)"
        )

    @property
    def id(self) -> str:
        return f"{self.server.id}/{'backups' if self.server.engine == 'postgres' else 'backupsV2'}/{self.name}"


def backup_name(backup_id: str) -> str:
    """``lc2-<backupId>``, the same for every delivery (so a redelivery finds its backup); ids that do not fit
    Azure's backup names (letters, digits, '-', '_', at most 60 here) are shortened with a digest."""
    name = "lc2-" + re.sub(r"[^A-Za-z0-9_-]", "-", backup_id)
    if len(name) <= _BACKUP_NAME and name == f"lc2-{backup_id}":
        return name
    digest = hashlib.sha256(backup_id.encode()).hexdigest()[:12]
    return f"{name[: _BACKUP_NAME - 13]}-{digest}"
