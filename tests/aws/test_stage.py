"""The fake stage itself: what it keeps of the requests that pass through it."""

from __future__ import annotations

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from tests.aws.stage import Stage
from tests.aws.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

pytestmark = pytest.mark.aws


async def test_the_parameters_of_each_rds_request_are_kept_in_order(stage: Stage) -> None:
    stage.fail("DescribeDBInstances", times=1, code="Throttling")
    async with aioboto3.Session().client(
        "rds",
        endpoint_url=stage.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=AioConfig(retries={"mode": "standard", "total_max_attempts": 1}),
    ) as staged:
        for name in ("first", "second"):
            with pytest.raises(ClientError):  # throttled (injected), then not found (moto): both kept
                await staged.describe_db_instances(DBInstanceIdentifier=name)
    calls = stage.calls("DescribeDBInstances")
    assert [c["DBInstanceIdentifier"] for c in calls] == ["first", "second"]
    assert all(c["Action"] == "DescribeDBInstances" for c in calls)
    assert stage.calls("CreateDBInstance") == []
