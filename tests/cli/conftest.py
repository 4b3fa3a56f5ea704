"""Fixtures of the CLI tests: the shared ``system`` (tests/conftest.py) with a seeded source to back up."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from lc2backup.devstack.seeding import liferay_database_sql, plan_document_library, seed_document_library
from tests.support import System


@pytest.fixture
async def seeded(system: System, s3: Any, buckets: tuple[str, str]) -> tuple[str, str]:
    """(source, destination) buckets; the source holds a small Liferay store, the source database its tables."""
    source, destination = buckets
    conn = await asyncpg.connect(system.source_dsn)
    try:
        await conn.execute(liferay_database_sql(scale=1))
    finally:
        await conn.close()
    await seed_document_library(s3, source, "", plan_document_library(40))
    return source, destination


@pytest.fixture(autouse=True)
def api_token(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its bearer token from ``LC2_API_TOKEN``: give it the running system's operator token."""
    if "system" in request.fixturenames:
        system: System = request.getfixturevalue("system")
        monkeypatch.setenv("LC2_API_TOKEN", system.api_token)
