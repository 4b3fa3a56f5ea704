"""Conformance of the lean S3 path (``s3direct``: aiohttp, botocore's signer and credential chain) against two
real servers, moto (with its IAM authentication switched on, so it checks signatures and session tokens)
and SeaweedFS: every case sends the same request through botocore's own client — the reference, not our
code — and compares the answers: listings across pages and prefixes, keys that need escaping, CopyObject's
ETag, the error codes of a failed precondition, a missing key and a missing bucket, wrong credentials,
throttling (injected by a proxy at the network edge, retries counted there) and temporary credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from lc2backup.devstack import LocalStack, MotoServer
from lc2backup.devstack.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from lc2backup.providers.errors import PermanentProviderError, TransientProviderError
from lc2backup.providers.s3 import translate
from lc2backup.providers.s3direct import DirectEndpoint, DirectS3, Listed
from tests.aws.stage import Stage

ODD_KEYS = [
    "odd/with space/1.0",
    "odd/ünïcødé/日本語",
    "odd/plus+sign",
    "odd/percent%20not-a-space%",
    "odd/tilde~(paren)",
    "odd/equals=and&ampersand",
    "odd/mixed ?#[]@!$'*,;",
]
NO_SUCH_ETAG = '"0123456789abcdef0123456789abcdef"'
PROFILE_FREE = {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@dataclass(frozen=True)
class Target:
    """One S3 server and the static keys it accepts; ``session`` are temporary credentials (moto only)."""

    name: str
    url: str
    access_key: str
    secret_key: str
    session: tuple[str, str, str] | None = None

    def direct(self, *, url: str | None = None, secret_key: str | None = None, attempts: int = 1) -> DirectEndpoint:
        return DirectEndpoint(
            url or self.url, REGION, self.access_key, secret_key or self.secret_key, 5.0, 30.0, attempts
        )


@contextlib.asynccontextmanager
async def reference(
    target: Target,
    *,
    url: str | None = None,
    secret_key: str | None = None,
    attempts: int = 1,
    token: str | None = None,
) -> AsyncIterator[Any]:
    """botocore's S3 client, configured as ``s3.s3_client`` configures it for an endpoint."""
    config = AioConfig(
        retries={"mode": "standard", "total_max_attempts": attempts},
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    async with aioboto3.Session().client(
        "s3",
        endpoint_url=url or target.url,
        region_name=REGION,
        aws_access_key_id=target.access_key if token is None else target.session[0],  # type: ignore[index]
        aws_secret_access_key=(secret_key or target.secret_key) if token is None else target.session[1],  # type: ignore[index]
        aws_session_token=token,
        config=config,
    ) as client:
        yield client


def _moto_auth(moto: MotoServer, count: str) -> None:
    """Switch moto's IAM authentication on ("0": every request from now on) or off ("inf")."""
    request = urllib.request.Request(
        f"{moto.endpoint}/moto-api/reset-auth",
        data=count.encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


async def _moto_identities(moto: MotoServer) -> tuple[tuple[str, str], tuple[str, str, str]]:
    """An IAM user with an S3 policy (its access key) and a role it may assume (temporary credentials)."""
    s3_all = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    )
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
    )
    session = aioboto3.Session()
    keys = {"aws_access_key_id": "AKIASETUPONLY0000000", "aws_secret_access_key": "setup", "region_name": REGION}
    async with session.client("iam", endpoint_url=moto.endpoint, **keys) as iam:
        await iam.create_user(UserName="lc2-conformance")
        await iam.put_user_policy(UserName="lc2-conformance", PolicyName="s3", PolicyDocument=s3_all)
        created = (await iam.create_access_key(UserName="lc2-conformance"))["AccessKey"]
        role = (await iam.create_role(RoleName="lc2-copy", AssumeRolePolicyDocument=trust))["Role"]
        await iam.put_role_policy(RoleName="lc2-copy", PolicyName="s3", PolicyDocument=s3_all)
    async with session.client("sts", endpoint_url=moto.endpoint, **keys) as sts:
        assumed = (await sts.assume_role(RoleArn=role["Arn"], RoleSessionName="conformance"))["Credentials"]
    user = (created["AccessKeyId"], created["SecretAccessKey"])
    return user, (assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"])


@pytest.fixture(scope="module")
def moto_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A moto server of this module's own, authentication on (it checks every signature and session token)."""
    server = MotoServer(Path(tmp_path_factory.mktemp("moto-conformance")))
    server.start()
    try:
        user, temporary = asyncio.run(_moto_identities(server))
        _moto_auth(server, "0")
        yield Target("moto", server.endpoint, *user, session=temporary)
    finally:
        server.stop()


@pytest.fixture(params=["moto", "seaweedfs"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "moto":
        return request.getfixturevalue("moto_target")  # type: ignore[no-any-return]
    stack: LocalStack = request.getfixturevalue("stack")
    return Target("seaweedfs", stack.s3.endpoint, ACCESS_KEY, SECRET_KEY)


@pytest.fixture
async def ref(target: Target) -> AsyncIterator[Any]:
    async with reference(target) as client:
        yield client


@pytest.fixture
async def pair(ref: Any, unique: str) -> tuple[str, str]:
    source, destination = f"conf-src-{unique}", f"conf-dst-{unique}"
    await ref.create_bucket(Bucket=source)
    await ref.create_bucket(Bucket=destination)
    return source, destination


async def _put_all(ref: Any, bucket: str, keys: list[str]) -> None:
    gate = asyncio.Semaphore(16)

    async def put(key: str) -> None:
        async with gate:
            await ref.put_object(Bucket=bucket, Key=key, Body=f"body of {key}".encode(), ContentType="text/plain")

    await asyncio.gather(*(put(k) for k in keys))


async def _botocore_listing(ref: Any, bucket: str, prefix: str) -> list[list[Listed]]:
    pages = []
    async for page in ref.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        pages.append([Listed(o["Key"], int(o["Size"]), str(o["ETag"])) for o in page.get("Contents", [])])
    return pages


async def _outcome(call: Callable[[], Awaitable[Any]]) -> str:
    """ "ok", or the error code the server answered."""
    try:
        await call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


async def _codes(ours: Callable[[], Awaitable[Any]], theirs: Callable[[], Awaitable[Any]]) -> tuple[str, str]:
    """The outcomes of the same request sent by the lean path and by botocore."""
    return await _outcome(ours), await _outcome(theirs)


async def test_listing_matches_botocore_across_pages_and_prefixes(
    target: Target, ref: Any, pair: tuple[str, str]
) -> None:
    source, _ = pair
    keys = [f"many/{i:05d}" for i in range(1003)] + ODD_KEYS + ["other/a", "other/b"]
    await _put_all(ref, source, keys)
    async with DirectS3(target.direct(), 8) as http:
        for prefix in ("", "many/", "odd/", "odd/with space/", "other/", "none/"):
            ours = [page async for page in http.list_objects(source, prefix)]
            expected = await _botocore_listing(ref, source, prefix)
            assert [[o.key for o in p] for p in ours] == [[o.key for o in p] for p in expected], prefix
            assert ours == expected, prefix  # sizes and ETags too
    assert len(await _botocore_listing(ref, source, "")) == 2  # the proof covers more than one page


async def test_copy_of_keys_needing_escaping_matches_botocore(target: Target, ref: Any, pair: tuple[str, str]) -> None:
    source, destination = pair
    await _put_all(ref, source, ODD_KEYS)
    async with DirectS3(target.direct(), 4) as http:
        for key in ODD_KEYS:
            etag = (await ref.head_object(Bucket=source, Key=key))["ETag"]
            ours = await http.copy_object(source, key, destination, f"lean/{key}", etag)
            theirs = await ref.copy_object(
                Bucket=destination,
                Key=f"botocore/{key}",
                CopySource={"Bucket": source, "Key": key},
                CopySourceIfMatch=etag,
            )
            assert ours == theirs["CopyObjectResult"]["ETag"], key
            copied = await ref.get_object(Bucket=destination, Key=f"lean/{key}")  # read back by botocore
            assert copied["ETag"].strip('"') == ours.strip('"')  # SeaweedFS leaves CopyObjectResult's unquoted
            assert copied["ContentType"] == "text/plain"
            assert await copied["Body"].read() == f"body of {key}".encode()


async def test_error_codes_match_botocore(target: Target, ref: Any, pair: tuple[str, str], unique: str) -> None:
    source, destination = pair
    await _put_all(ref, source, ["doc/1"])
    missing = f"conf-missing-{unique}"
    etag = (await ref.head_object(Bucket=source, Key="doc/1"))["ETag"]
    async with DirectS3(target.direct(), 2) as http:
        cases: dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]], set[str]]] = {
            "changed source (If-Match fails)": (
                lambda: http.copy_object(source, "doc/1", destination, "x", NO_SUCH_ETAG),
                lambda: ref.copy_object(
                    Bucket=destination,
                    Key="x",
                    CopySource={"Bucket": source, "Key": "doc/1"},
                    CopySourceIfMatch=NO_SUCH_ETAG,
                ),
                # moto does not implement x-amz-copy-source-if-match (it copies): the answers still agree
                {"ok"} if target.name == "moto" else {"PreconditionFailed"},
            ),
            "missing source key": (
                lambda: http.copy_object(source, "doc/gone", destination, "y", NO_SUCH_ETAG),
                lambda: ref.copy_object(
                    Bucket=destination,
                    Key="y",
                    CopySource={"Bucket": source, "Key": "doc/gone"},
                    CopySourceIfMatch=NO_SUCH_ETAG,
                ),
                {"NoSuchKey"},
            ),
            "missing destination bucket": (
                lambda: http.copy_object(source, "doc/1", missing, "z", etag),
                lambda: ref.copy_object(
                    Bucket=missing,
                    Key="z",
                    CopySource={"Bucket": source, "Key": "doc/1"},
                    CopySourceIfMatch=etag,
                ),
                # SeaweedFS answers 500 InternalError here (botocore sees the same): the bucket check before a copy
                # (``require_bucket``) is what names a missing bucket to the user
                {"InternalError"} if target.name == "seaweedfs" else {"NoSuchBucket"},
            ),
            "missing bucket listed": (
                lambda: anext(aiter(http.list_objects(missing, ""))),
                lambda: ref.list_objects_v2(Bucket=missing, Prefix=""),
                {"NoSuchBucket"},
            ),
        }
        for what, (ours, theirs, expected) in cases.items():
            mine, reference_code = await _codes(ours, theirs)
            assert mine == reference_code, what
            assert mine in expected, what
    copied = {o["Key"] for o in (await ref.list_objects_v2(Bucket=destination)).get("Contents", [])}
    assert copied == ({"x"} if target.name == "moto" else set())  # nothing else was copied


async def test_wrong_credentials_are_refused_like_botocores(target: Target, pair: tuple[str, str]) -> None:
    source, destination = pair
    async with (
        DirectS3(target.direct(secret_key="not-the-secret"), 1) as http,
        reference(target, secret_key="not-the-secret") as wrong,
    ):
        mine, reference_code = await _codes(
            lambda: anext(aiter(http.list_objects(source, ""))), lambda: wrong.list_objects_v2(Bucket=source)
        )
        assert mine == reference_code
        if target.name == "seaweedfs":
            assert mine == "ok"
            pytest.skip("the stack's SeaweedFS has no IAM config and accepts any signature; moto checks them")
        assert mine in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
        with pytest.raises(ClientError) as copy:
            await http.copy_object(source, "doc/1", destination, "x", NO_SUCH_ETAG)
    error = translate(copy.value, "copy")
    assert isinstance(error, PermanentProviderError) and "access denied" in str(error)
    async with DirectS3(target.direct(), 1) as right:  # positive control: the right secret is accepted
        assert [page async for page in right.list_objects(source, "")] == [[]]


async def test_throttling_is_retried_then_reported_transient(target: Target, ref: Any, pair: tuple[str, str]) -> None:
    source, destination = pair
    await _put_all(ref, source, ["doc/1"])
    etag = (await ref.head_object(Bucket=source, Key="doc/1"))["ETag"]
    stage = Stage(target.url).start()
    try:
        async with DirectS3(target.direct(url=stage.url, attempts=2), 2) as http:
            stage.fail("CopyObject", 1, "SlowDown", status=503, message="Please reduce your request rate.")
            assert (await http.copy_object(source, "doc/1", destination, "retried", etag)).strip('"') == etag.strip('"')
            assert (stage.count("CopyObject"), stage.injected["CopyObject"]) == (2, 1)  # one refused, one copied
            stage.fail("ListObjectsV2", 1, "SlowDown", status=503)
            assert [[o.key for o in p] async for p in http.list_objects(destination, "")] == [["retried"]]
            assert stage.count("ListObjectsV2") == 2

            stage.fail("CopyObject", 2, "SlowDown", status=503)
            with pytest.raises(ClientError) as ours:
                await http.copy_object(source, "doc/1", destination, "refused", etag)
        assert stage.count("CopyObject") == 4  # both attempts, no more
        async with reference(target, url=stage.url, attempts=2) as boto:
            stage.fail("CopyObject", 2, "SlowDown", status=503)
            with pytest.raises(ClientError) as theirs:
                await boto.copy_object(
                    Bucket=destination,
                    Key="refused",
                    CopySource={"Bucket": source, "Key": "doc/1"},
                    CopySourceIfMatch=etag,
                )
        assert stage.count("CopyObject") == 6  # botocore's standard mode made the same two attempts
    finally:
        stage.close()
    assert ours.value.response["Error"]["Code"] == theirs.value.response["Error"]["Code"] == "SlowDown"
    assert isinstance(translate(ours.value, "copy"), TransientProviderError)
    with pytest.raises(ClientError):  # the refused copy never reached the server
        await ref.head_object(Bucket=destination, Key="refused")


async def test_temporary_credentials_from_the_chain(
    target: Target, ref: Any, pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on AWS: no keys in the settings, a session token from the environment (IRSA and roles work alike)."""
    if target.session is None:
        pytest.skip(f"{target.name} issues no temporary credentials (no STS)")
    source, destination = pair
    await _put_all(ref, source, ["doc/1"])
    etag = (await ref.head_object(Bucket=source, Key="doc/1"))["ETag"]
    key_id, secret, token = target.session
    for name, value in {**PROFILE_FREE, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}.items():
        monkeypatch.setenv(name, value)
    chain = DirectEndpoint(target.url, REGION)  # no static keys: botocore's chain

    def boto_copy(boto: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: boto.copy_object(
            Bucket=destination, Key="copied", CopySource={"Bucket": source, "Key": "doc/1"}, CopySourceIfMatch=etag
        )

    monkeypatch.setenv("AWS_SESSION_TOKEN", "not-the-token")  # positive control: moto checks the token
    async with DirectS3(chain, 2) as http, reference(target, token="not-the-token") as boto:
        mine, reference_code = await _codes(
            lambda: http.copy_object(source, "doc/1", destination, "copied", etag), boto_copy(boto)
        )
    assert mine == reference_code != "ok"
    assert "copied" not in {o["Key"] for o in (await ref.list_objects_v2(Bucket=destination)).get("Contents", [])}

    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    async with DirectS3(chain, 2) as http:
        assert await http.copy_object(source, "doc/1", destination, "copied", etag) == etag
        listed = [page async for page in http.list_objects(destination, "")]
    async with reference(target, token=token) as boto:
        assert listed == await _botocore_listing(boto, destination, "")
    assert [o.key for o in listed[0]] == ["copied"]
