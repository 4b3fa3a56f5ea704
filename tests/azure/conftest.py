"""The Azure tests' servers: one set of stand-ins per session (``tests.azure.fixtures``), one flexible server (a
real PostgreSQL database with Liferay's tables) and two containers per test, and the five services as real
processes (the shared ``system`` fixture) with the azure provider pointed at the stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seeding import liferay_database_sql
from tests.azure.fixtures import azure
from tests.azure.support import AzureFakes, FlexibleServer, blob_client

__all__ = ["azure"]


@pytest.fixture
def fakes(azure: AzureFakes) -> Iterator[AzureFakes]:
    """The session's stand-ins, back to fast, unheld and uncounted around each test."""
    azure.fast()
    yield azure
    azure.fast()


@pytest.fixture
def server(stack: LocalStack, fakes: AzureFakes, unique: str) -> FlexibleServer:
    """A PostgreSQL flexible server of the stand-in whose database is a real one filled with Liferay's tables."""
    database = f"lportal_{unique}"
    dsn = stack.postgres.create_database(database)
    stack.postgres.psql(liferay_database_sql(), database=database)
    return FlexibleServer(fakes.add_server(f"liferay-{unique}", dsn), database, dsn)


@pytest.fixture
async def containers(fakes: AzureFakes, unique: str) -> AsyncIterator[tuple[str, str]]:
    """(source, destination) containers in Azurite, empty, unique to the test."""
    source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
    async with blob_client(fakes) as client:
        await client.create_container(source)
        await client.create_container(destination)
    yield source, destination


@pytest.fixture
def system_extra_env(fakes: AzureFakes, request: pytest.FixtureRequest) -> dict[str, str]:
    """The azure provider pointed at the stand-ins; a test changes settings with
    ``@pytest.mark.parametrize("system_extra_env", [{...}], indirect=True)``."""
    return fakes.env(**getattr(request, "param", {}))
