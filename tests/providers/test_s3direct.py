"""The lean S3 path (ListObjectsV2 and CopyObject over aiohttp) against the stack's SeaweedFS, checked
against what botocore sees: same listing, same copies, the same error codes for vanished and changed sources.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from lc2backup.domain import BackupLayout
from lc2backup.providers import S3Settings
from lc2backup.providers.s3direct import DirectArtifactStore, DirectEndpoint, DirectS3

ODD_KEYS = ["20101/30001/60000/1.0 with space", "20101/30001/60001/ünïcødé+plus%percent", "20101/0/adaptive/x~y(z)"]


def _endpoint(stack: LocalStack) -> DirectEndpoint:
    settings = S3Settings(
        endpoint_url=stack.s3.endpoint,
        region=REGION,
        access_key_id=SecretStr(ACCESS_KEY),
        secret_access_key=SecretStr(SECRET_KEY),
    )
    return DirectEndpoint.from_settings(settings)


def test_every_endpoint_takes_the_lean_path_with_the_clients_credentials() -> None:
    aws = DirectEndpoint.from_settings(S3Settings(region="eu-west-1", max_attempts=3))
    assert (aws.url, aws.region, aws.access_key, aws.secret_key, aws.max_attempts) == (None, "eu-west-1", None, None, 4)
    keys = S3Settings(
        endpoint_url="http://127.0.0.1:1/", access_key_id=SecretStr("a"), secret_access_key=SecretStr("b")
    )
    local = DirectEndpoint.from_settings(keys)
    assert (local.url, local.access_key, local.secret_key) == ("http://127.0.0.1:1", "a", "b")
    assert "b" not in repr(local)  # the secret never shows in a log line
    chain = DirectEndpoint.from_settings(S3Settings(endpoint_url="http://127.0.0.1:1"))
    assert chain.access_key is None  # no static keys: botocore's chain, as for AWS


async def test_listing_matches_botocore_across_pages(stack: LocalStack, s3: Any, buckets: tuple[str, str]) -> None:
    source, _ = buckets
    keys = [f"20101/30001/{i}/1.0" for i in range(1030)] + ODD_KEYS
    gate = asyncio.Semaphore(32)

    async def put(key: str) -> None:
        async with gate:
            await s3.put_object(Bucket=source, Key=key, Body=key.encode())

    await asyncio.gather(*(put(k) for k in keys))
    expected = {}
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source, Prefix="20101/"):
        expected.update({o["Key"]: (o["Size"], o["ETag"]) for o in page.get("Contents", [])})
    async with DirectS3(_endpoint(stack), 8) as http:
        pages = [page async for page in http.list_objects(source, "20101/")]
    assert len(pages) == 2
    assert {o.key: (o.size, o.etag) for page in pages for o in page} == expected
    assert set(expected) == set(keys)


async def test_copy_pins_the_source_and_reports_botocore_error_codes(
    stack: LocalStack, s3: Any, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    for key in ODD_KEYS:
        await s3.put_object(Bucket=source, Key=key, Body=b"payload " + key.encode(), ContentType="text/plain")
    async with DirectS3(_endpoint(stack), 4) as http:
        for key in ODD_KEYS:
            head = await s3.head_object(Bucket=source, Key=key)
            etag = await http.copy_object(source, key, destination, f"copy/{key}", head["ETag"])
            copied = await s3.get_object(Bucket=destination, Key=f"copy/{key}")
            assert await copied["Body"].read() == b"payload " + key.encode()
            assert copied["ContentType"] == "text/plain"
            assert etag.strip('"') == copied["ETag"].strip('"')
        with pytest.raises(ClientError) as changed:
            await http.copy_object(source, ODD_KEYS[0], destination, "x", '"0123456789abcdef0123456789abcdef"')
        assert changed.value.response["Error"]["Code"] in ("PreconditionFailed", "412")
        with pytest.raises(ClientError) as vanished:
            await http.copy_object(source, "20101/1/2/gone", destination, "y", '"0123456789abcdef0123456789abcdef"')
        assert vanished.value.response["Error"]["Code"] in ("NoSuchKey", "404")


async def test_artifact_store_is_create_only(stack: LocalStack, s3: Any, buckets: tuple[str, str]) -> None:
    _, destination = buckets
    async with DirectS3(_endpoint(stack), 2) as http:
        store = DirectArtifactStore(http)
        layout = BackupLayout(destination, "b/")
        first = await store.put_once(layout, "b/metadata.json", b'{"backupId": "b"}', "application/json")
        again = await store.put_once(layout, "b/metadata.json", b'{"backupId": "other"}', "application/json")
    assert first.created and first.existing is None and first.location == f"s3://{destination}/b/metadata.json"
    assert not again.created and again.existing == b'{"backupId": "b"}'
    stored = await s3.get_object(Bucket=destination, Key="b/metadata.json")
    assert stored["ContentType"] == "application/json"
    assert await stored["Body"].read() == b'{"backupId": "b"}'


class _Sent(Exception):
    pass


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1", "cn-north-1"])
@pytest.mark.parametrize(("bucket", "key"), [("my-bucket", "20101/a b/ü+%~=&"), ("my.dotted.bucket", "k/1.0")])
def test_aws_urls_are_botocores(region: str, bucket: str, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On AWS itself (no endpoint) the lean path addresses a bucket as botocore's client does (regional
    endpoint, virtual-hosted where the name allows, path-style otherwise), checked on the URL botocore sends."""
    import botocore.session
    from botocore.config import Config

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.url.split("?")[0])
        raise _Sent

    client = botocore.session.get_session().create_client(
        "s3", region_name=region, config=Config(s3={"us_east_1_regional_endpoint": "regional"})
    )
    client.meta.events.register("before-send.s3.GetObject", capture)
    with pytest.raises(_Sent):
        client.get_object(Bucket=bucket, Key=key)
    assert DirectS3(DirectEndpoint(None, region), 1)._url(bucket, key) == sent[0]
