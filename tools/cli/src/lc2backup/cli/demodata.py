"""The Liferay environment the demo and ``dev up`` back up: a ``lportal`` database and a ``liferay-dl`` store.

Idempotent, so ``dev up`` can run it on every start: the tables are created if missing and filled with
``ON CONFLICT DO NOTHING``, the buckets are created if missing, and the store is seeded only when empty.
The names match ``deploy/samples/backuprequest-local.yaml``.

The services also back up the user's own databases: instances given in ``LC2_LOCAL__DATABASES`` when the
stack starts are kept beside the demo's ``liferay-local`` (``user_databases``), never replaced by it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from lc2backup.cli.errors import StackFailure
from lc2backup.devstack import LocalStack
from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.postgres import PG_USER
from lc2backup.devstack.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from lc2backup.devstack.seeding import (
    DocumentLibraryLayout,
    liferay_database_sql,
    plan_document_library,
    seed_document_library,
)
from lc2backup.domain import is_generated

INSTANCE_ID = "liferay-local"
DATABASE = "lportal"
SOURCE_BUCKET = "liferay-dl"
BACKUP_BUCKET = "lc2-backups"
MIB = 1024 * 1024


@dataclass(frozen=True)
class DemoSize:
    """How much to generate: the defaults make a few-MB database and a ~25 MiB store of 400 objects."""

    scale: int = 1
    files: int = 400
    generated_share: float = 0.2
    large_every: int = 40
    large_size: int = 2 * MIB


@dataclass(frozen=True)
class DemoData:
    database_dsn: str
    database_bytes: int
    objects: int
    object_bytes: int
    generated_objects: int
    seeded_now: bool

    def databases_setting(self, user: Mapping[str, str]) -> str:
        """``LC2_LOCAL__DATABASES``: the user's instances and the sample's instanceId mapped to this database."""
        return json.dumps({**user, INSTANCE_ID: self.database_dsn})


@asynccontextmanager
async def s3_client(endpoint: str) -> AsyncIterator[Any]:
    import aioboto3  # here, not at the top: it takes a second to import and only dev up / demo need it

    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as client:
        yield client


async def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        await s3.create_bucket(Bucket=bucket)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass  # idempotent: ``dev up`` runs this on every start


async def _inventory(s3: Any, bucket: str) -> tuple[int, int, int]:
    objects = size = generated = 0
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            objects += 1
            size += int(obj["Size"])
            generated += is_generated(obj["Key"])
    return objects, size, generated


async def seed_database(dsn: str, size: DemoSize) -> int:
    """Create and fill Liferay's tables (idempotent); the database's size in bytes."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(liferay_database_sql(scale=size.scale))
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


def demo_layout(size: DemoSize) -> DocumentLibraryLayout:
    return plan_document_library(
        size.files, generated_share=size.generated_share, large_every=size.large_every, large_size=size.large_size
    )


async def _seed(endpoint: str, dsn: str, size: DemoSize) -> DemoData:
    database_bytes = await seed_database(dsn, size)
    async with s3_client(endpoint) as s3:
        for bucket in (SOURCE_BUCKET, BACKUP_BUCKET):
            await _ensure_bucket(s3, bucket)
        empty = (await s3.list_objects_v2(Bucket=SOURCE_BUCKET, MaxKeys=1)).get("KeyCount", 0) == 0
        if empty:
            await seed_document_library(s3, SOURCE_BUCKET, "", demo_layout(size))
        objects, object_bytes, generated = await _inventory(s3, SOURCE_BUCKET)
    return DemoData(dsn, database_bytes, objects, object_bytes, generated, seeded_now=empty)


def user_databases(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The instances the user configured in ``LC2_LOCAL__DATABASES`` (``{"<instanceId>": "<DSN>"}``), checked.

    Refused rather than dropped: a value that is not such an object, and the id of the demo's own instance.
    """
    raw = environ.get("LC2_LOCAL__DATABASES", "").strip()
    if not raw:
        return {}
    hint = 'LC2_LOCAL__DATABASES=\'{"my-db": "postgresql://user:password@host:5432/lportal"}\''
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise StackFailure("LC2_LOCAL__DATABASES is not JSON", hint=hint) from None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise StackFailure("LC2_LOCAL__DATABASES must map instance ids to DSN strings", hint=hint)
    if INSTANCE_ID in parsed:
        raise StackFailure(
            f"LC2_LOCAL__DATABASES names {INSTANCE_ID!r}, the local stack's own demo instance",
            hint="give your database another instance id; the stack adds its demo database as " + INSTANCE_ID,
        )
    return {str(k): v for k, v in parsed.items()}


def services_env(stack: LocalStack, data: DemoData, user: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the five services need: the stack, the user's databases and the demo database, by instance id."""
    databases = user_databases() if user is None else user
    return {**stack.env(), "LC2_LOCAL__DATABASES": data.databases_setting(databases)}


def shell_env(stack: LocalStack) -> dict[str, str]:
    """What ``.lc2/env`` adds for a shell: the stack's PostgreSQL for psql, createdb and pg_restore, and its S3
    for the AWS CLI and SDKs (which read AWS_*, not LC2_S3__*). Not given to the services."""
    return {
        "PGHOST": LOOPBACK,
        "PGPORT": str(stack.postgres.port),
        "PGUSER": PG_USER,
        "AWS_ENDPOINT_URL": stack.s3.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }


def prepare(stack: LocalStack, size: DemoSize | None = None) -> DemoData:
    """Create (or find) the demo database, buckets and store on a started stack."""
    dsn = stack.postgres.create_database(DATABASE)
    return asyncio.run(_seed(stack.s3.endpoint, dsn, size or DemoSize()))
