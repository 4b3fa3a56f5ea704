"""Which flexible server a BackupRequest names, and the backup's deterministic name on Azure."""

from __future__ import annotations

import pytest

from lc2backup.providers.azure import ServerRef, backup_name
from lc2backup.providers.errors import PermanentProviderError

SUB = "00000000-0000-4000-8000-000000000001"
PG_ID = f"/subscriptions/{SUB}/resourceGroups/rg-1/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg-1"


@pytest.mark.parametrize("instance_id", [PG_ID, PG_ID.lstrip("/"), PG_ID.lower(), "rg-1/pg-1"])
def test_a_postgres_server_is_named_by_resource_id_or_group_and_name(instance_id: str) -> None:
    ref = ServerRef.parse(instance_id, SUB)
    assert (ref.subscription.lower(), ref.resource_group.lower(), ref.server, ref.engine) == (
        SUB,
        "rg-1",
        "pg-1",
        "postgres",
    )
    assert ref.id.lower() == PG_ID.lower()


def test_a_mysql_resource_id_is_recognised() -> None:
    ref = ServerRef.parse(PG_ID.replace("DBforPostgreSQL", "DBforMySQL"), None)
    assert ref.engine == "mysql"


@pytest.mark.parametrize(
    ("instance_id", "subscription", "says"),
    [
        ("rg-1/pg-1", None, "LC2_AZURE__SUBSCRIPTION_ID"),
        ("pg-1", SUB, "is not a flexible server"),
        (PG_ID.replace("flexibleServers", "servers"), SUB, "is not a flexible server"),
        (PG_ID.replace("Microsoft.DBforPostgreSQL", "Microsoft.Sql"), SUB, "is not a flexible server"),
    ],
)
def test_anything_else_is_refused_naming_the_forms(instance_id: str, subscription: str | None, says: str) -> None:
    with pytest.raises(PermanentProviderError, match=says):
        ServerRef.parse(instance_id, subscription)


def test_backup_names_are_deterministic_and_fit_azure() -> None:
    assert backup_name("3f1c9e2a-1b2c-4d5e-8f90-123456789abc") == "lc2-3f1c9e2a-1b2c-4d5e-8f90-123456789abc"
    long, odd = backup_name("x" * 200), backup_name("a.b c")
    assert long == backup_name("x" * 200) and len(long) <= 60
    assert odd != backup_name("a-b-c") and all(ch.isalnum() or ch in "-_" for ch in odd)
