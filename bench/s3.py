"""An S3 client on the stack's SeaweedFS for seeding and checking buckets (the product's own client factory)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import SecretStr

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from lc2backup.providers import S3Settings, s3_client


def settings(stack: LocalStack) -> S3Settings:
    return S3Settings(
        endpoint_url=stack.s3.endpoint,
        region=REGION,
        access_key_id=SecretStr(ACCESS_KEY),
        secret_access_key=SecretStr(SECRET_KEY),
    )


@contextlib.asynccontextmanager
async def bench_s3_client(stack: LocalStack) -> AsyncIterator[Any]:
    async with s3_client(settings(stack)) as client:
        yield client


async def ensure_bucket(client: Any, bucket: str) -> None:
    with contextlib.suppress(Exception):
        await client.create_bucket(Bucket=bucket)


async def count_objects(client: Any, bucket: str, prefix: str = "") -> tuple[int, int, list[str]]:
    """(objects, bytes, keys) under ``prefix``."""
    keys: list[str] = []
    total = 0
    paginator = client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            keys.append(obj["Key"])
            total += int(obj["Size"])
    return len(keys), total, keys
