"""The RDS client: aioboto3 with botocore's retry mode set explicitly.

botocore 1.4x still defaults to the ``legacy`` mode (its ``standard`` default is behind an opt-in
environment variable), which does not know every throttling code; so the mode is always passed. Retries
inside one call absorb short throttling; longer outages become a durable retry of the whole step.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from lc2backup.providers.aws.settings import AwsSettings

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig

RdsClient = Any  # types-aiobotocore-rds' RDSClient; kept loose so no SDK type leaks past this package


def client_config(settings: AwsSettings) -> AioConfig:
    from aiobotocore.config import AioConfig  # imported on use: aioboto3 is slow to import (B7)

    return AioConfig(
        region_name=settings.region,
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )


@contextlib.asynccontextmanager
async def rds_client(settings: AwsSettings) -> AsyncIterator[RdsClient]:
    """An RDS client whose credentials come from the standard AWS chain (env, profile, IRSA)."""
    import aioboto3

    session = aioboto3.Session()
    async with session.client("rds", endpoint_url=settings.rds_endpoint_url, config=client_config(settings)) as client:
        yield client
