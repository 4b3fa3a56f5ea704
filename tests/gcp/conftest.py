"""The GCP tests' servers: one set of fakes per session (``tests.gcp.fixtures``), one Cloud SQL instance (a real
PostgreSQL database with Liferay's tables) and two buckets per test, and the five services as real processes
(the shared ``system`` fixture) with the gcp provider pointed at the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seeding import liferay_database_sql
from tests.gcp.fixtures import gcp
from tests.gcp.support import PROJECT, CloudSql, GcpFakes

__all__ = ["gcp"]


@pytest.fixture
def fakes(gcp: GcpFakes) -> Iterator[GcpFakes]:
    """The session's fakes, back to fast and unheld after each test."""
    gcp.fast()
    yield gcp
    gcp.fast()


@pytest.fixture
def gcs(fakes: GcpFakes) -> Any:
    return fakes.client()


@pytest.fixture
def instance(stack: LocalStack, fakes: GcpFakes, unique: str) -> CloudSql:
    """A Cloud SQL instance of the fake whose database (named in the spec) is a real PostgreSQL database filled
    with Liferay's tables."""
    database = f"lportal_{unique}"
    dsn = stack.postgres.create_database(database)
    stack.postgres.psql(liferay_database_sql(), database=database)
    name = f"liferay-{unique}"
    fakes.sqladmin.add_instance(PROJECT, name, dsn)
    return CloudSql(name, database, dsn)


@pytest.fixture
def gcs_buckets(gcs: Any, unique: str) -> tuple[str, str]:
    """(source, destination) buckets in fake-gcs-server, empty, unique to the test."""
    source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
    gcs.create_bucket(source)
    gcs.create_bucket(destination)
    return source, destination


@pytest.fixture
def system_extra_env(fakes: GcpFakes) -> dict[str, str]:
    return fakes.env()
