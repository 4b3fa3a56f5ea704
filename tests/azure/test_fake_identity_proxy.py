"""The Azure stand-ins that sit beside Azurite: the App Service managed-identity endpoint, driven by the real
``DefaultAzureCredential`` (sync and aio), and the HTTPS proxy that makes Copy Blob pending, counts writes and
injects 503s, driven by the real ``azure.storage.blob.aio.BlobServiceClient``."""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import BlobServiceClient, LinearRetry

from lc2backup.devstack.azurite import ACCOUNT, AzuriteServer
from lc2backup.testing.azure.certs import TlsFiles, make_tls
from lc2backup.testing.azure.copyproxy import PendingCopyProxy
from lc2backup.testing.azure.identity import ManagedIdentityEndpoint
from lc2backup.testing.azure.tokens import STORAGE, mint_token, token_claims

pytestmark = pytest.mark.azure

SCOPE = f"{STORAGE}/.default"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[AzuriteServer]:
    server = AzuriteServer(tmp_path_factory.mktemp("azurite"), cert=tls.cert, key=tls.key)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedIdentityEndpoint]:
    # a secret starting with "-", as token_urlsafe makes one in 64 times: it once failed a demo (read as an option)
    server = ManagedIdentityEndpoint(tmp_path_factory.mktemp("identity"), secret="-" + secrets.token_urlsafe(24))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy_server(
    tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles, azurite: AzuriteServer
) -> Iterator[PendingCopyProxy]:
    server = PendingCopyProxy(
        tmp_path_factory.mktemp("copy-proxy"), upstream=azurite.endpoint, cert=tls.cert, key=tls.key, ca=tls.ca
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxy(proxy_server: PendingCopyProxy) -> Iterator[PendingCopyProxy]:
    proxy_server.reset()
    yield proxy_server
    proxy_server.reset()


@pytest.fixture
def identity_env(identity: ManagedIdentityEndpoint, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = identity.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


class MintedCredential:
    """An async token credential handing out tokens Azurite accepts, without the identity endpoint."""

    async def get_token(self, *scopes: str, **_kw: Any) -> AccessToken:
        return AccessToken(*mint_token(scopes[0]))

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> MintedCredential:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        pass


def blob_service(account_url: str, tls: TlsFiles, **kw: Any) -> BlobServiceClient:
    return BlobServiceClient(account_url, credential=MintedCredential(), connection_verify=str(tls.ca), **kw)


def token_request(identity: ManagedIdentityEndpoint, headers: dict[str, str]) -> tuple[int, bytes]:
    url = f"{identity.token_url}?api-version=2019-08-01&resource={STORAGE}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- managed identity ---------------------------------------------------------------------------------------


def test_env_selects_app_service_managed_identity(identity: ManagedIdentityEndpoint) -> None:
    env = identity.env()
    assert env["IDENTITY_ENDPOINT"] == f"{identity.endpoint}/msi/token"
    assert env["IDENTITY_HEADER"] == identity.secret
    assert env["AZURE_TOKEN_CREDENTIALS"] == "managedidentitycredential"


def test_wrong_or_missing_header_is_refused_and_issues_nothing(identity: ManagedIdentityEndpoint) -> None:
    before = identity.state()
    assert token_request(identity, {})[0] == 400
    status, body = token_request(identity, {"X-IDENTITY-HEADER": "not-the-secret"})
    assert status == 401 and b'"statusCode": 401' in body
    status, body = token_request(identity, {"X-IDENTITY-HEADER": identity.secret})
    assert status == 200
    after = identity.state()
    assert after["requests"] == before["requests"] + 3
    assert after["refused"] == before["refused"] + 2
    assert len(after["issued"]) == len(before["issued"]) + 1


def test_sync_default_credential_gets_an_issued_token(
    identity: ManagedIdentityEndpoint, identity_env: dict[str, str]
) -> None:
    from azure.identity import DefaultAzureCredential

    started = time.monotonic()
    with DefaultAzureCredential() as credential:
        token = credential.get_token(SCOPE)
    elapsed = time.monotonic() - started
    assert token.token in identity.issued()
    claims = token_claims(token.token)
    assert claims is not None and claims["aud"] == STORAGE
    assert token.expires_on > time.time() + 3000
    assert elapsed < 2.0, f"first get_token took {elapsed:.2f}s"


async def test_aio_default_credential_gets_an_issued_token(
    identity: ManagedIdentityEndpoint, identity_env: dict[str, str]
) -> None:
    from azure.identity.aio import DefaultAzureCredential

    started = time.monotonic()
    async with DefaultAzureCredential() as credential:
        token = await credential.get_token(SCOPE)
    elapsed = time.monotonic() - started
    assert token.token in identity.issued()
    assert elapsed < 2.0, f"first get_token took {elapsed:.2f}s"


async def test_default_credential_reaches_azurite_over_https(
    identity: ManagedIdentityEndpoint, identity_env: dict[str, str], azurite: AzuriteServer, tls: TlsFiles
) -> None:
    from azure.identity.aio import DefaultAzureCredential

    before = len(identity.issued())
    async with (
        DefaultAzureCredential() as credential,
        BlobServiceClient(azurite.account_url, credential=credential, connection_verify=str(tls.ca)) as service,
    ):
        container = await service.create_container("mi-container")
        await container.upload_blob("hello.txt", b"hello")
        names = [b.name async for b in container.list_blobs()]
    assert names == ["hello.txt"]
    assert len(identity.issued()) == before + 1


def test_sync_blob_client_with_default_credential(
    identity: ManagedIdentityEndpoint, identity_env: dict[str, str], azurite: AzuriteServer, tls: TlsFiles
) -> None:
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient as SyncBlobServiceClient

    with (
        DefaultAzureCredential() as credential,
        SyncBlobServiceClient(azurite.account_url, credential=credential, connection_verify=str(tls.ca)) as service,
    ):
        service.create_container("mi-sync-container")
        assert [c.name for c in service.list_containers(name_starts_with="mi-sync")] == ["mi-sync-container"]


# --- copy proxy ---------------------------------------------------------------------------------------------


async def test_requests_pass_through_and_writes_are_counted(proxy: PendingCopyProxy, tls: TlsFiles) -> None:
    blocks = {"max_single_put_size": 1 << 20, "max_block_size": 1 << 20}
    async with blob_service(proxy.account_url, tls, **blocks) as service:
        container = await service.create_container("passthrough")
        await container.upload_blob("a/b c.txt", b"x" * 100_000, metadata={"k": "v"})
        await container.upload_blob("big.bin", b"y" * (5 << 20))  # Put Block x5 + Put Block List
        names = sorted([b.name async for b in container.list_blobs()])
        data = await (await container.download_blob("a/b c.txt")).readall()
        props = await container.get_blob_client("a/b c.txt").get_blob_properties()
    assert names == ["a/b c.txt", "big.bin"]
    assert data == b"x" * 100_000
    assert props.size == 100_000 and props.metadata == {"k": "v"}
    state = proxy.state()
    assert state["writes"] == {f"{ACCOUNT}/passthrough/a/b c.txt": 1, f"{ACCOUNT}/passthrough/big.bin": 1}
    assert state["copies_total"] == 0 and state["busy"] == 0


async def test_copy_is_pending_for_n_reads_then_succeeds(proxy: PendingCopyProxy, tls: TlsFiles) -> None:
    proxy.configure(pending_polls=2)
    async with blob_service(proxy.account_url, tls) as service:
        container = await service.create_container("pending")
        source = await container.upload_blob("src.bin", b"s" * 1000)
        destination = container.get_blob_client("dst.bin")
        started = await destination.start_copy_from_url(source.url)
        assert started["copy_status"] == "pending"
        statuses = []
        for _ in range(3):
            props = await destination.get_blob_properties()
            statuses.append((props.copy.status, props.copy.progress, props.copy.id))
    assert statuses[0] == ("pending", "500/1000", started["copy_id"])
    assert statuses[1][0] == "pending"
    assert statuses[2][0] == "success"
    state = proxy.state()
    key = f"{ACCOUNT}/pending/dst.bin"
    assert state["copies_started"] == {key: 1} and state["copies_total"] == 1
    assert state["pending"] == {} and state["pending_reads"] == 2
    assert state["copies"][0]["destination"] == key and state["copies"][0]["copy_id"] == started["copy_id"]


async def test_held_copy_is_aborted_and_counted(proxy: PendingCopyProxy, tls: TlsFiles) -> None:
    proxy.configure(hold=True)
    async with blob_service(proxy.account_url, tls) as service:
        container = await service.create_container("held")
        source = await container.upload_blob("src.bin", b"s" * 1000)
        destination = container.get_blob_client("dst.bin")
        started = await destination.start_copy_from_url(source.url, metadata={"m": "1"})
        copy_id = str(started["copy_id"])
        for _ in range(5):
            assert (await destination.get_blob_properties()).copy.status == "pending"
        with pytest.raises(HttpResponseError) as mismatch:
            await destination.abort_copy("00000000-0000-0000-0000-000000000000")
        assert mismatch.value.status_code == 409 and getattr(mismatch.value, "error_code", None) == "CopyIdMismatch"
        await destination.abort_copy(copy_id)
        props = await destination.get_blob_properties()
        with pytest.raises(HttpResponseError) as again:
            await destination.abort_copy(copy_id)
    assert props.copy.status == "aborted" and props.copy.id == started["copy_id"]
    assert props.size == 0 and props.metadata == {"m": "1"}
    assert again.value.status_code == 409 and getattr(again.value, "error_code", None) == "NoPendingCopyOperation"
    state = proxy.state()
    assert state["aborts"] == 1 and state["aborted"] == {f"{ACCOUNT}/held/dst.bin": started["copy_id"]}
    assert state["pending"] == {}


async def test_held_copy_completes_when_released(proxy: PendingCopyProxy, tls: TlsFiles) -> None:
    proxy.configure(hold=True)
    async with blob_service(proxy.account_url, tls) as service:
        container = await service.create_container("released")
        source = await container.upload_blob("src.bin", b"s" * 10)
        destination = container.get_blob_client("dst.bin")
        await destination.start_copy_from_url(source.url)
        assert (await destination.get_blob_properties()).copy.status == "pending"
        assert proxy.release() == [f"{ACCOUNT}/released/dst.bin"]
        props = await destination.get_blob_properties()
        data = await (await destination.download_blob()).readall()
    assert props.copy.status == "success" and data == b"s" * 10


async def test_server_busy_is_retried_by_the_storage_retry_policy(proxy: PendingCopyProxy, tls: TlsFiles) -> None:
    """azure-storage-blob retries with its own policy, which ignores ``Retry-After``: its default
    ``ExponentialRetry`` waits 15 s + 3**n (+-3 s) per retry, so the test client retries linearly and fast."""
    fast = LinearRetry(backoff=0, random_jitter_range=0)
    async with blob_service(proxy.account_url, tls, retry_policy=fast) as service:
        container = await service.create_container("busy")
        proxy.busy(2)
        started = time.monotonic()
        await container.upload_blob("after-busy.txt", b"ok")
        elapsed = time.monotonic() - started
        data = await (await container.download_blob("after-busy.txt")).readall()
    state = proxy.state()
    assert data == b"ok"
    assert state["busy"] == 2 and state["busy_remaining"] == 0
    assert state["writes"] == {f"{ACCOUNT}/busy/after-busy.txt": 1}
    assert elapsed < 5.0


async def test_second_copy_to_the_same_destination_counts_two_writes(proxy: PendingCopyProxy, tls: TlsFiles) -> None:
    """Positive control for the exactly-once assertions: a repeated copy is visible in the counts."""
    async with blob_service(proxy.account_url, tls) as service:
        container = await service.create_container("twice")
        source = await container.upload_blob("src.bin", b"s")
        destination = container.get_blob_client("dst.bin")
        for _ in range(2):
            assert (await destination.start_copy_from_url(source.url))["copy_status"] == "success"
    state = proxy.state()
    key = f"{ACCOUNT}/twice/dst.bin"
    assert state["writes"][key] == 2 and state["copies_started"][key] == 2
    assert state["writes"][f"{ACCOUNT}/twice/src.bin"] == 1


def test_control_api_is_plain_http_and_data_plane_is_https(proxy: PendingCopyProxy) -> None:
    assert proxy.endpoint.startswith("http://127.0.0.1:")
    assert proxy.account_url.startswith("https://127.0.0.1:") and proxy.account_url.endswith(f"/{ACCOUNT}")
    assert Path(proxy.directory / f"{proxy.name}.log").exists()
