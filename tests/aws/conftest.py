"""The AWS tests' servers: one moto server per session, a fake stage in front of it per test, and the five
services as real processes (the shared ``system`` fixture) using the aws provider through the stage; the
test itself talks to moto directly, to set up and to count what the services did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig

from lc2backup.devstack import MotoServer
from tests.aws.stage import Stage
from tests.aws.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, aws_env, create_instance


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stage(moto: MotoServer) -> Iterator[Stage]:
    proxy = Stage(moto.endpoint).start()
    yield proxy
    proxy.close()


@pytest.fixture
async def rds(moto: MotoServer) -> AsyncIterator[Any]:
    session = aioboto3.Session()
    async with session.client(
        "rds",
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    ) as client:
        yield client


@pytest.fixture
async def aws_s3(moto: MotoServer) -> AsyncIterator[Any]:
    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=AioConfig(s3={"addressing_style": "path"}),
    ) as client:
        yield client


@pytest.fixture
async def instance(rds: Any, unique: str) -> str:
    """A PostgreSQL RDS instance in moto, unique to the test."""
    return await create_instance(rds, f"liferay-{unique}")


@pytest.fixture
async def aws_buckets(aws_s3: Any, unique: str) -> tuple[str, str]:
    """(source, destination) buckets in moto, empty, unique to the test."""
    source, destination = f"liferay-dl-{unique}", f"backups-{unique}"
    await aws_s3.create_bucket(Bucket=source)
    await aws_s3.create_bucket(Bucket=destination)
    return source, destination


@pytest.fixture
def system_extra_env(stage: Stage) -> dict[str, str]:
    """The ``system`` fixture's services get the aws provider, pointed at the stage in front of moto."""
    return aws_env(stage.url)
