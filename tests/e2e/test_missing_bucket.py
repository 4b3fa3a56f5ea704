"""A backup into a bucket that does not exist fails by name: LC2 Backup never creates buckets.

Before: SeaweedFS answers a write into a missing bucket with ``AccessDenied`` and a CopyObject into one
with ``InternalError``, so the backup failed with "access denied ... grant the backup role access".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lc2backup.devstack.seeding import plan_document_library, seed_document_library
from tests.support import System

pytestmark = pytest.mark.e2e


async def test_a_missing_destination_bucket_fails_the_backup_saying_it_does_not_exist(
    system: System, s3: Any, buckets: tuple[str, str], unique: str
) -> None:
    source, _ = buckets
    await seed_document_library(s3, source, "", plan_document_library(20))
    missing = f"gone-{unique}"

    async with system.client() as client:
        resp = await client.post("/api/v1/backups", json=system.spec(source, missing))
        assert resp.status_code == 202, resp.text
        backup_id = resp.json()["backupId"]
    doc = await system.wait_for(backup_id, timeout=90)

    assert doc["state"] == "Failed", json.dumps(doc, indent=1)
    message = doc["message"]
    assert f"destination bucket {missing} does not exist" in message, message
    assert "never creates buckets" in message and "spec.documentLibrary.destinationBucket" in message, message
    assert "access denied" not in message.lower() and "grant" not in message, message
    status = doc["status"]
    # both branches check the bucket first: each failed by itself, or was cancelled by the other's failure
    branches = [status["database"]["state"], status["documentLibrary"]["state"]]
    assert "Failed" in branches and set(branches) <= {"Failed", "Cancelled"}, json.dumps(status, indent=1)
    resp = await s3.list_buckets()
    assert missing not in {b["Name"] for b in resp["Buckets"]}, "the backup created the bucket"
