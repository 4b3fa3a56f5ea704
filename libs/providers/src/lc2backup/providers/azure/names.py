"""Names on Azure: which flexible server a BackupRequest means, and the deterministic backup name of a backup.

``spec.database.instanceId`` is the server's resource id
(``/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.DBforPostgreSQL/flexibleServers/<name>``, or
``Microsoft.DBforMySQL`` for MySQL; the leading ``/`` optional) or, for PostgreSQL, ``<resourceGroup>/<server>``
with ``LC2_AZURE__SUBSCRIPTION_ID``.
"""

from __future__ import annotations

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


def backup_name(backup_id: str) -> str:
    """``lc2-<backupId>``, the same for every delivery (so a redelivery finds its backup); ids that do not fit
    Azure's backup names (letters, digits, '-', '_', at most 60 here) are shortened with a digest."""
    name = "lc2-" + re.sub(r"[^A-Za-z0-9_-]", "-", backup_id)
    if len(name) <= _BACKUP_NAME and name == f"lc2-{backup_id}":
        return name
    digest = hashlib.sha256(backup_id.encode()).hexdigest()[:12]
    return f"{name[: _BACKUP_NAME - 13]}-{digest}"
