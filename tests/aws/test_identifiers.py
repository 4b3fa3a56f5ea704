"""Deterministic RDS names: valid by RDS's rules for any backup id, stable, and distinct per backup."""

from __future__ import annotations

import pytest

from lc2backup.providers.aws.identifiers import (
    EXPORT_MAX,
    SNAPSHOT_MAX,
    SourceRef,
    export_identifier,
    is_valid,
    snapshot_identifier,
    snapshot_kind,
)

pytestmark = pytest.mark.aws

ODD_IDS = [
    "6faf4b71-af62-439b-8456-e3d3a8e58492",  # a uuid (fixed: every pytest-xdist worker collects the same ids)
    "ABC--def__ghi",
    "-leading-and-trailing-",
    "9" * 200,
    "x" * 300,
    "ünïcödé/ids:with.dots",
    "---",
    "ends-with-cluster",
]


def test_names_of_a_uuid_backup_read_back_the_backup_id() -> None:
    backup_id = "0b6a3f55-1e0c-4a61-9d5b-3c1f8f7e2a10"
    assert snapshot_identifier(backup_id, "instance") == f"lc2-{backup_id}-db-snapshot"
    assert snapshot_identifier(backup_id, "cluster") == f"lc2-{backup_id}-cluster-snapshot"
    assert export_identifier(backup_id) == f"lc2-{backup_id}-export"


@pytest.mark.parametrize("backup_id", ODD_IDS)
def test_every_backup_id_gives_valid_stable_names(backup_id: str) -> None:
    for kind in ("instance", "cluster"):
        name = snapshot_identifier(backup_id, kind)
        assert is_valid(name, SNAPSHOT_MAX) and name == snapshot_identifier(backup_id, kind)
        assert snapshot_kind(name) == kind
    export = export_identifier(backup_id)
    assert is_valid(export, EXPORT_MAX) and "--" not in export and export[0].isalpha()


def test_long_ids_that_share_a_prefix_still_get_distinct_names() -> None:
    a, b = "a" * 100 + "1", "a" * 100 + "2"
    assert export_identifier(a) != export_identifier(b)
    assert snapshot_identifier(a, "instance") != snapshot_identifier(b, "instance")


def test_rules_reject_what_rds_rejects() -> None:
    assert not is_valid("1abc", 60)
    assert not is_valid("ab--c", 60)
    assert not is_valid("abc-", 60)
    assert not is_valid("a" * 61, 60)
    assert is_valid("a-b-c", 60)


def test_source_arns_name_their_kind_and_region() -> None:
    assert SourceRef.parse("liferay-prd") == SourceRef("liferay-prd")
    assert SourceRef.parse("arn:aws:rds:eu-west-1:123456789012:db:liferay-prd") == SourceRef(
        "liferay-prd", "instance", "eu-west-1"
    )
    assert SourceRef.parse("arn:aws:rds:eu-west-1:123456789012:cluster:aurora-prd") == SourceRef(
        "aurora-prd", "cluster", "eu-west-1"
    )
    with pytest.raises(ValueError, match="not the ARN of an RDS instance"):
        SourceRef.parse("arn:aws:s3:::a-bucket")
