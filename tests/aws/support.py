"""Helpers of the AWS tests: the spec, the requests, bounded waits, and moto-side inspection."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.polling import eventually
from tests.support import System, cloud_spec

MIB = 1024 * 1024
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
EXPORT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/lc2-rds-export"
EXPORT_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f2c8f9e-1b7d-4c55-9e1a-5d3c2b1a0f99"
# the services find these through the standard chain (environment); no test or event may ever show them
ACCESS_KEY_ID = "AKIALC2MOTOTESTONLY7"
SECRET_ACCESS_KEY = "lc2-moto-secret-must-never-leak-0123456789"


async def create_instance(rds: Any, name: str) -> str:
    """A PostgreSQL RDS instance in moto named ``name`` (the backups never log in to it)."""
    await rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        EngineVersion="16.3",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="liferay",
        MasterUserPassword="not-used-by-the-backup",
        DBName="lportal",
    )
    return name


def aws_spec(instance: str, source: str, destination: str, **overrides: Any) -> dict[str, Any]:
    return cloud_spec("aws", instance, "lportal", source, destination, **overrides)


async def request_backup(system: System, spec: dict[str, Any]) -> str:
    async with system.client(timeout=10) as client:
        resp = await client.post("/api/v1/backups", json=spec)
        assert resp.status_code == 202, resp.text
        backup_id: str = resp.json()["backupId"]
        return backup_id


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], system: System, timeout: float = 90.0) -> None:
    """Poll ``check`` until it holds (``tests.polling.eventually``); a bounded wait, not a timing assertion."""
    await eventually(check, timeout=timeout, what=what, interval=0.2, context=system.logs)


async def events_of(system: System, backup_id: str, event_type: str) -> list[dict[str, Any]]:
    try:
        items = await system.events(backup_id)
    except httpx.HTTPStatusError:
        return []
    return [e["data"] for e in items if e["type"] == event_type]


def aws_env(endpoint: str, **overrides: str) -> dict[str, str]:
    """What the services need to use the aws provider against ``endpoint`` (the stage in front of moto)."""
    return {
        "LC2_PROVIDERS": json.dumps(["local", "aws"]),
        "LC2_AWS__REGION": REGION,
        "LC2_AWS__RDS_ENDPOINT_URL": endpoint,
        "LC2_AWS__S3_ENDPOINT_URL": endpoint,
        "LC2_AWS__EXPORT_IAM_ROLE_ARN": EXPORT_ROLE,
        "LC2_AWS__EXPORT_KMS_KEY_ID": EXPORT_KEY,
        "LC2_AWS__MAX_ATTEMPTS": "2",  # botocore retries after the first attempt
        "LC2_AWS__TRANSIENT_RETRY_SECONDS": "0.5",
        "LC2_AWS__SINGLE_COPY_LIMIT_BYTES": str(6 * MIB),
        "LC2_AWS__MULTIPART_PART_SIZE_BYTES": str(5 * MIB),
        "LC2_AWS__COPY_WORKERS": "8",
        "LC2_AWS__PROGRESS_INTERVAL_SECONDS": "0.5",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **overrides,
    }


async def upload_multipart(s3: Any, bucket: str, key: str, size: int, part_size: int = 5 * MIB) -> str:
    """An object uploaded in ``part_size`` parts (its ETag is ``md5-of-parts-N``, as on S3)."""
    body = os.urandom(size)
    upload = await s3.create_multipart_upload(Bucket=bucket, Key=key)
    parts = []
    for number, start in enumerate(range(0, size, part_size), start=1):
        part = await s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body[start : start + part_size],
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    done = await s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    return str(done["ETag"])


async def listing(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key (relative to ``prefix``) -> (size, ETag)."""
    found: dict[str, tuple[int, str]] = {}
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) :]] = (int(obj["Size"]), str(obj["ETag"]))
    return found


async def snapshots_of(rds: Any, instance: str) -> list[dict[str, Any]]:
    resp = await rds.describe_db_snapshots(DBInstanceIdentifier=instance, SnapshotType="manual")
    return list(resp["DBSnapshots"])


async def exports_of(rds: Any, source_arns: set[str]) -> list[dict[str, Any]]:
    resp = await rds.describe_export_tasks()
    return [t for t in resp["ExportTasks"] if t["SourceArn"] in source_arns]
