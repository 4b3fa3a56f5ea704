"""The local Storage Transfer Service, driven by the real ``StorageTransferServiceClient(transport="rest")``.

Objects are seeded into the real fake-gcs-server with google-cloud-storage; the fake copies them inside it.
What the service under test will rely on: an explicit job name makes create idempotent (409 ALREADY_EXISTS,
job unchanged); a run while an operation is active is refused; operations parse as ``TransferOperation``
with counters and error breakdowns; exclude prefixes keep Liferay's thumbnails, previews and adaptive-media
renditions out of the sink; a second run of the same job writes nothing (the fake's per-object write count
is the exactly-once evidence, and ALWAYS is the positive control that the count would show a rewrite).

Over REST, google-api-core picks the exception class from the HTTP status alone: 409 ALREADY_EXISTS arrives
as ``Conflict`` (not its subclass ``AlreadyExists``) and 400 FAILED_PRECONDITION as ``BadRequest``; the
``status`` of the error body tells them apart.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import google.oauth2.credentials
import pytest
from google.api_core.exceptions import BadRequest, Conflict, GoogleAPICallError, NotFound
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import InvalidOperation
from google.cloud import storage, storage_transfer
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from lc2backup.devstack.fakegcs import FakeGcsServer
from lc2backup.testing.gcp.stack import GcpFakes
from lc2backup.testing.gcp.sts import FakeStorageTransfer
from tests.polling import eventually

pytestmark = [pytest.mark.gcp]

PROJECT = "proj-1"
TOKEN = "test-token-7f3a"
COMPANIES = ("20101", "20102")
EXCLUDED_AREAS = ("document_thumbnail/", "document_preview/", "adaptive/")
Status = storage_transfer.TransferOperation.Status
Overwrite = storage_transfer.TransferOptions.OverwriteWhen


@pytest.fixture(scope="module")
def gcs(gcp: GcpFakes) -> FakeGcsServer:
    """The session's fake-gcs-server (tests.gcp.fixtures); each test uses buckets of its own."""
    return gcp.gcs


@pytest.fixture(scope="module")
def sts_server(tmp_path_factory: pytest.TempPathFactory, gcs: FakeGcsServer) -> Iterator[FakeStorageTransfer]:
    server = FakeStorageTransfer(tmp_path_factory.mktemp("fake-sts"), gcs.endpoint)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sts(sts_server: FakeStorageTransfer) -> FakeStorageTransfer:
    sts_server.reset()
    return sts_server


@pytest.fixture
def client(sts: FakeStorageTransfer) -> storage_transfer.StorageTransferServiceClient:
    return storage_transfer.StorageTransferServiceClient(
        transport="rest",
        credentials=google.oauth2.credentials.Credentials(token=TOKEN),
        client_options={"api_endpoint": sts.endpoint},
    )


@pytest.fixture(scope="module")
def gcs_client(gcs: FakeGcsServer) -> storage.Client:
    return storage.Client(
        project="p", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs.endpoint}
    )


class Buckets:
    """A source bucket laid out like Liferay's document library under ``dl/``, and an empty sink."""

    def __init__(self, gcs_client: storage.Client) -> None:
        suffix = uuid.uuid4().hex[:12]
        self.source = gcs_client.create_bucket(f"src-{suffix}")
        self.sink = gcs_client.create_bucket(f"sink-{suffix}")
        self.kept: dict[str, bytes] = {}  # relative to dl/
        self.excluded: dict[str, bytes] = {}
        for company in COMPANIES:
            for area in EXCLUDED_AREAS:
                self.excluded[f"{company}/0/{area}{company}/img.png"] = f"{company}{area}".encode() * 50
            self.kept[f"{company}/0/adaptive-not/readme.txt"] = b"partial names are not excluded"
            self.kept[f"{company}/31415/10/1.0"] = f"{company} document".encode() * 100
            self.kept[f"{company}/31415/11/1.0"] = f"{company} other".encode() * 7
        self.kept["20103/0/document_thumbnail/x.png"] = b"another company's thumbnail is kept"
        for name, data in {**self.kept, **self.excluded}.items():
            self.source.blob(f"dl/{name}").upload_from_string(data)
        self.source.blob("outside/dl/1.0").upload_from_string(b"not under the source path")

    @property
    def sink_prefix(self) -> str:
        return "backups/b1/documentlibrary/"

    def sink_objects(self) -> dict[str, storage.Blob]:
        return {blob.name: blob for blob in self.sink.list_blobs()}


@pytest.fixture
def buckets(gcs_client: storage.Client) -> Buckets:
    return Buckets(gcs_client)


def exclude_prefixes() -> list[str]:
    # relative to the source path (dl/), as STS evaluates them for a folder source
    return [f"{company}/0/{area}" for company in COMPANIES for area in EXCLUDED_AREAS]


def transfer_job(
    name: str,
    source: str,
    sink: str,
    *,
    overwrite: Overwrite = Overwrite.DIFFERENT,
    excludes: list[str] | None = None,
    source_path: str = "dl/",
) -> storage_transfer.TransferJob:
    return storage_transfer.TransferJob(
        name=name,
        project_id=PROJECT,
        description="doclib backup b1",
        status=storage_transfer.TransferJob.Status.ENABLED,
        transfer_spec=storage_transfer.TransferSpec(
            gcs_data_source=storage_transfer.GcsData(bucket_name=source, path=source_path),
            gcs_data_sink=storage_transfer.GcsData(bucket_name=sink, path="backups/b1/documentlibrary/"),
            object_conditions=storage_transfer.ObjectConditions(
                exclude_prefixes=exclude_prefixes() if excludes is None else excludes
            ),
            transfer_options=storage_transfer.TransferOptions(overwrite_when=overwrite),
        ),
    )


def job_for(buckets: Buckets, **kwargs: Any) -> storage_transfer.TransferJob:
    return transfer_job(f"transferJobs/b1-{uuid.uuid4().hex[:8]}", buckets.source.name, buckets.sink.name, **kwargs)


def operations(
    client: storage_transfer.StorageTransferServiceClient, job_name: str, **extra: Any
) -> list[storage_transfer.TransferOperation]:
    request = operations_pb2.ListOperationsRequest(
        name="transferOperations", filter=json.dumps({"projectId": PROJECT, "jobNames": [job_name], **extra})
    )
    response = client.list_operations(request)
    return [storage_transfer.TransferOperation.deserialize(op.metadata.value) for op in response.operations]


async def finished(
    client: storage_transfer.StorageTransferServiceClient, job_name: str, operation_name: str
) -> storage_transfer.TransferOperation:
    def probe() -> storage_transfer.TransferOperation | None:
        [latest] = [op for op in operations(client, job_name) if op.name == operation_name]
        return latest if latest.status in (Status.SUCCESS, Status.FAILED, Status.ABORTED) else None

    return await eventually(probe, timeout=20, what=f"{operation_name} finished", interval=0.02)


def run(client: storage_transfer.StorageTransferServiceClient, job_name: str) -> str:
    operation = client.run_transfer_job({"job_name": job_name, "project_id": PROJECT})
    assert not operation.operation.done  # the answer to run (operation.done() would poll again)
    metadata = operation.metadata  # api_core unpacks the Any into the client's metadata type
    assert isinstance(metadata, storage_transfer.TransferOperation)
    assert metadata.transfer_job_name == job_name
    assert metadata.status in (Status.QUEUED, Status.IN_PROGRESS)
    return str(operation.operation.name)


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # GCS's md5Hash


def error_status(exc: GoogleAPICallError) -> str:
    response = exc.response
    assert response is not None
    return str(response.json()["error"]["status"])


async def test_job_runs_once_copying_all_but_excluded_areas(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets)
    created = client.create_transfer_job({"transfer_job": job})
    assert created.name == job.name
    assert created.status == storage_transfer.TransferJob.Status.ENABLED
    assert created.creation_time is not None

    retry = job_for(buckets, overwrite=Overwrite.ALWAYS)
    retry.name = job.name
    with pytest.raises(Conflict) as refused:
        client.create_transfer_job({"transfer_job": retry})
    assert error_status(refused.value) == "ALREADY_EXISTS"
    stored = client.get_transfer_job({"job_name": job.name, "project_id": PROJECT})
    assert stored.transfer_spec.transfer_options.overwrite_when == Overwrite.DIFFERENT
    assert list(stored.transfer_spec.object_conditions.exclude_prefixes) == exclude_prefixes()

    first = run(client, job.name)
    assert first.startswith(f"transferOperations/transferJobs-{job.name.removeprefix('transferJobs/')}-")
    done = await finished(client, job.name, first)
    assert done.status == Status.SUCCESS, done
    sink = buckets.sink_objects()
    assert set(sink) == {buckets.sink_prefix + name for name in buckets.kept}
    for name, data in buckets.kept.items():
        assert sink[buckets.sink_prefix + name].md5_hash == md5(data)
    kept_bytes = sum(len(data) for data in buckets.kept.values())
    counters = done.counters
    assert (counters.objects_found_from_source, counters.bytes_found_from_source) == (len(buckets.kept), kept_bytes)
    assert (counters.objects_copied_to_sink, counters.bytes_copied_to_sink) == (len(buckets.kept), kept_bytes)
    assert counters.objects_from_source_skipped_by_sync == counters.objects_from_source_failed == 0
    assert client.get_transfer_job({"job_name": job.name, "project_id": PROJECT}).latest_operation_name == first

    second = run(client, job.name)
    again = await finished(client, job.name, second)
    assert again.status == Status.SUCCESS
    assert again.counters.objects_copied_to_sink == 0
    assert again.counters.objects_from_source_skipped_by_sync == len(buckets.kept)
    assert again.counters.bytes_from_source_skipped_by_sync == kept_bytes
    counts = sts.state()["counts"]
    assert counts["writes"] == {f"{buckets.sink.name}/{buckets.sink_prefix}{name}": 1 for name in buckets.kept}
    assert (counts["transferJobs.create"], counts["alreadyExists"], counts["transferJobs.run"]) == (1, 1, 2)
    assert counts["runRefused"] == counts["unauthenticated"] == 0


async def test_always_rewrites_every_object_positive_control(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets, overwrite=Overwrite.ALWAYS)
    client.create_transfer_job({"transfer_job": job})
    for _ in range(2):
        done = await finished(client, job.name, run(client, job.name))
        assert done.status == Status.SUCCESS
        assert done.counters.objects_copied_to_sink == len(buckets.kept)
    writes = sts.state()["counts"]["writes"]
    assert writes == {f"{buckets.sink.name}/{buckets.sink_prefix}{name}": 2 for name in buckets.kept}

    page = client.list_operations(
        operations_pb2.ListOperationsRequest(
            name="transferOperations", filter=json.dumps({"project_id": PROJECT, "job_names": [job.name]}), page_size=1
        )
    )
    assert len(page.operations) == 1 and page.next_page_token
    newest = storage_transfer.TransferOperation.deserialize(page.operations[0].metadata.value)
    rest = client.list_operations(
        operations_pb2.ListOperationsRequest(
            name="transferOperations",
            filter=json.dumps({"projectId": PROJECT, "jobNames": [job.name]}),
            page_size=1,
            page_token=page.next_page_token,
        )
    )
    oldest = storage_transfer.TransferOperation.deserialize(rest.operations[0].metadata.value)
    assert oldest.start_time < newest.start_time and not rest.next_page_token
    since = newest.start_time.isoformat()
    assert [op.name for op in operations(client, job.name, minCreationTime=since)] == [newest.name]


async def test_different_rewrites_changed_objects_and_never_keeps_them(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    changed = "20101/31415/10/1.0"
    buckets.sink.blob(buckets.sink_prefix + changed).upload_from_string(b"an older version")
    never = job_for(buckets, overwrite=Overwrite.NEVER)
    client.create_transfer_job({"transfer_job": never})
    done = await finished(client, never.name, run(client, never.name))
    assert done.counters.objects_from_source_skipped_by_sync == 1
    assert buckets.sink.blob(buckets.sink_prefix + changed).download_as_bytes() == b"an older version"

    different = job_for(buckets)
    client.create_transfer_job({"transfer_job": different})
    done = await finished(client, different.name, run(client, different.name))
    assert (done.counters.objects_copied_to_sink, done.counters.objects_from_source_skipped_by_sync) == (
        1,
        len(buckets.kept) - 1,
    )
    assert buckets.sink.blob(buckets.sink_prefix + changed).download_as_bytes() == buckets.kept[changed]
    assert sts.state()["counts"]["writes"][f"{buckets.sink.name}/{buckets.sink_prefix}{changed}"] == 1


async def test_exclude_prefixes_are_relative_to_the_source_path(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    # prefixes that repeat the source path match nothing below it: everything is copied
    job = job_for(buckets, excludes=[f"dl/{prefix}" for prefix in exclude_prefixes()])
    client.create_transfer_job({"transfer_job": job})
    done = await finished(client, job.name, run(client, job.name))
    assert done.counters.objects_copied_to_sink == len(buckets.kept) + len(buckets.excluded)
    assert "prefixes are relative to the source path" in (sts.directory / "fake-sts.log").read_text()


async def test_run_while_an_operation_is_active_is_refused(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    sts.hold(True)
    first = run(client, job.name)
    with pytest.raises(BadRequest) as refused:
        client.run_transfer_job({"job_name": job.name, "project_id": PROJECT})
    assert error_status(refused.value) == "FAILED_PRECONDITION"
    assert first in refused.value.message
    assert [op.name for op in operations(client, job.name, transferStatuses=["in_progress", "queued"])] == [first]
    sts.hold(False)
    assert (await finished(client, job.name, first)).status == Status.SUCCESS
    await finished(client, job.name, run(client, job.name))
    counts = sts.state()["counts"]
    assert (counts["transferJobs.run"], counts["runRefused"]) == (2, 1)


async def test_held_operation_stays_in_progress_and_copies_nothing(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    sts.hold(True)
    name = run(client, job.name)

    def listed() -> storage_transfer.TransferOperation:
        [op] = operations(client, job.name)
        assert op.status == Status.IN_PROGRESS and op.counters.objects_found_from_source == len(buckets.kept)
        return op

    await eventually(listed, timeout=10, what="the source listed", interval=0.02)
    await asyncio.sleep(0.3)  # a held transfer must make no progress in this time
    op = listed()
    assert op.counters.objects_copied_to_sink == 0 and not op.end_time
    assert sts.state()["counts"]["writes"] == {} and buckets.sink_objects() == {}
    sts.hold(False)
    assert (await finished(client, job.name, name)).counters.objects_copied_to_sink == len(buckets.kept)


async def test_held_operation_with_nothing_to_copy_does_not_finish(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets, source_path="empty/")
    client.create_transfer_job({"transfer_job": job})
    sts.hold(True)
    name = run(client, job.name)
    await eventually(
        lambda: operations(client, job.name)[0].status == Status.IN_PROGRESS, timeout=10, what="in progress"
    )
    await asyncio.sleep(0.2)  # a held transfer must not finish in this time
    assert operations(client, job.name)[0].status == Status.IN_PROGRESS
    sts.hold(False)
    done = await finished(client, job.name, name)
    assert (done.status, done.counters.objects_found_from_source) == (Status.SUCCESS, 0)


async def test_object_vanishing_before_its_copy_fails_the_operation(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    sts.hold(True)
    name = run(client, job.name)
    await eventually(
        lambda: operations(client, job.name)[0].counters.objects_found_from_source == len(buckets.kept),
        timeout=10,
        what="the source listed",
        interval=0.02,
    )
    gone = "20102/31415/11/1.0"
    buckets.source.blob(f"dl/{gone}").delete()
    sts.hold(False)
    done = await finished(client, job.name, name)
    assert done.status == Status.FAILED
    assert done.counters.objects_from_source_failed == 1
    assert done.counters.bytes_from_source_failed == len(buckets.kept[gone])
    assert done.counters.objects_copied_to_sink == len(buckets.kept) - 1
    [breakdown] = done.error_breakdowns
    assert breakdown.error_code == code_pb2.NOT_FOUND and breakdown.error_count == 1
    assert breakdown.error_log_entries[0].url == f"gs://{buckets.source.name}/dl/{gone}"


async def test_injected_failure_fails_the_next_operation_only(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    sts.inject_failure("service agent lacks storage.objects.list")
    failed = await finished(client, job.name, run(client, job.name))
    assert failed.status == Status.FAILED
    [breakdown] = failed.error_breakdowns
    assert breakdown.error_code == code_pb2.PERMISSION_DENIED
    assert list(breakdown.error_log_entries[0].error_details) == ["service agent lacks storage.objects.list"]
    assert failed.counters.objects_copied_to_sink == 0
    operation = client.get_operation(operations_pb2.GetOperationRequest(name=failed.name))
    assert operation.done and operation.error.code == code_pb2.PERMISSION_DENIED
    assert (await finished(client, job.name, run(client, job.name))).status == Status.SUCCESS


async def test_cancel_aborts_the_operation(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    sts.hold(True)
    name = run(client, job.name)
    client.cancel_operation(operations_pb2.CancelOperationRequest(name=name))
    assert (await finished(client, job.name, name)).status == Status.ABORTED
    operation = client.get_operation(operations_pb2.GetOperationRequest(name=name))
    assert operation.done and operation.error.code == 1  # CANCELLED


async def test_queued_then_copies_at_the_configured_rate(
    client: storage_transfer.StorageTransferServiceClient, sts: FakeStorageTransfer, buckets: Buckets
) -> None:
    sts.configure(objects_per_second=15, queued_seconds=0.5)
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    name = run(client, job.name)
    assert operations(client, job.name)[0].status == Status.QUEUED

    def part_way() -> bool:
        counters = operations(client, job.name)[0].counters
        return 0 < counters.objects_copied_to_sink < len(buckets.kept)

    await eventually(part_way, timeout=10, what="some objects copied, not all", interval=0.01)
    assert (await finished(client, job.name, name)).status == Status.SUCCESS


def test_run_transfer_job_operation_result_is_empty(
    client: storage_transfer.StorageTransferServiceClient, buckets: Buckets
) -> None:
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    operation = client.run_transfer_job({"job_name": job.name, "project_id": PROJECT})
    operation.result(timeout=20)
    assert operation.metadata.status == Status.SUCCESS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"excludes": ["20101/0/*thumbnail*/"]}, "Wildcard matching and regular expression matching"),
        ({"excludes": ["20101/0/document_?review/"]}, "Wildcard matching"),
        ({"excludes": ["/20101/0/adaptive/"]}, "leading slash"),
        ({"excludes": [""]}, "empty"),
        ({"excludes": ["20101/0/", "20101/0/adaptive/"]}, "is a prefix of"),
        ({"excludes": [f"{n}/" for n in range(1001)]}, "maximum is 1000"),
        ({"source_path": "dl"}, "must be empty or end with '/'"),
        ({"name": "transferJobs/OPIb1"}, "Invalid job name"),
        ({"name": "transferJobs/b1-"}, "Invalid job name"),
        ({"name": "jobs/b1"}, "Invalid job name"),
        ({"name": "transferJobs/" + "b" * 120}, "Invalid job name"),
        ({"project_id": ""}, "projectId is required"),
    ],
)
def test_invalid_jobs_are_refused(
    client: storage_transfer.StorageTransferServiceClient,
    sts: FakeStorageTransfer,
    buckets: Buckets,
    change: dict[str, Any],
    message: str,
) -> None:
    fields = {key: change.pop(key) for key in ("name", "project_id") if key in change}
    job = job_for(buckets, **change)
    for key, value in fields.items():
        setattr(job, key, value)
    with pytest.raises(BadRequest) as refused:
        client.create_transfer_job({"transfer_job": job})
    assert error_status(refused.value) == "INVALID_ARGUMENT"
    assert message in refused.value.message
    assert sts.state()["jobs"] == []


@pytest.mark.parametrize("missing", ["source", "sink"])
def test_missing_bucket_is_refused(
    client: storage_transfer.StorageTransferServiceClient,
    sts: FakeStorageTransfer,
    buckets: Buckets,
    missing: str,
) -> None:
    absent = f"absent-{uuid.uuid4().hex[:12]}"
    source, sink = (absent, buckets.sink.name) if missing == "source" else (buckets.source.name, absent)
    with pytest.raises(BadRequest) as refused:
        client.create_transfer_job({"transfer_job": transfer_job("transferJobs/b1", source, sink)})
    assert error_status(refused.value) == "FAILED_PRECONDITION"
    assert absent in refused.value.message
    assert sts.state()["counts"]["transferJobs.create"] == 0


def test_unknown_job_and_operation_are_not_found(
    client: storage_transfer.StorageTransferServiceClient, buckets: Buckets
) -> None:
    job = job_for(buckets)
    client.create_transfer_job({"transfer_job": job})
    with pytest.raises(NotFound):
        client.get_transfer_job({"job_name": job.name, "project_id": "another-project"})
    with pytest.raises(NotFound):
        client.run_transfer_job({"job_name": "transferJobs/nope", "project_id": PROJECT})
    with pytest.raises(NotFound):
        client.get_operation(operations_pb2.GetOperationRequest(name="transferOperations/transferJobs-nope-1"))


def test_requests_without_a_bearer_token_are_unauthenticated(sts: FakeStorageTransfer) -> None:
    request = urllib.request.Request(f"{sts.endpoint}/v1/transferJobs/b1?projectId={PROJECT}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"]["status"] == "UNAUTHENTICATED"
    # the client with anonymous credentials sends no header, sees 401 and cannot refresh
    anonymous = storage_transfer.StorageTransferServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": sts.endpoint}
    )
    with pytest.raises(InvalidOperation):
        anonymous.get_transfer_job({"job_name": "transferJobs/b1", "project_id": PROJECT})
    assert sts.state()["counts"]["unauthenticated"] == 2
    log = (sts.directory / "fake-sts.log").read_text()
    assert "/v1/transferJobs" in log and TOKEN not in log
