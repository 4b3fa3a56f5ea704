"""A local Storage Transfer Service v1 that really copies between fake-gcs-server buckets.

There is no emulator for Storage Transfer, so this server speaks the REST wire format that
``StorageTransferServiceClient(transport="rest")`` (google-cloud-storage-transfer 1.22.0) sends and parses
(camelCase JSON, enums as integers in requests and as names in responses, int64 counters as strings, errors
as ``{"error": {"code", "message", "status"}}``), for GCS-to-GCS jobs run on demand:

* ``POST /v1/transferJobs`` creates a job under the caller's ``transferJobs/<id>`` name; a name in use is
  409 ALREADY_EXISTS and the stored job is left alone. The spec is validated as STS documents it
  (``path`` empty or ending in ``/``, include/exclude prefixes literal, distinct, at most 1000, wildcards
  refused); a missing source or sink bucket is 400 FAILED_PRECONDITION naming the bucket, the answer STS
  gives when it cannot get a bucket's location.
* ``POST /v1/transferJobs/<id>:run`` starts an operation ``transferOperations/transferJobs-<id>-<n>``; while
  one of the job's operations is active the run is refused with 400 FAILED_PRECONDITION (the documented
  behaviour is only "an error is returned"; the code is this fake's choice) and counted.
* ``GET /v1/transferOperations?filter=<JSON>`` and ``GET /v1/transferOperations/<id>`` answer long-running
  Operations whose metadata is a ``TransferOperation``; ``:cancel`` ends one ABORTED.

The copy happens inside fake-gcs-server (``copyTo``), object by object, while the operation is IN_PROGRESS:
the source is listed under ``gcsDataSource.path``; include/exclude prefixes are matched against the name
*relative to that path*, as STS documents ("If you specified a folder as your source location, prefix
filters are relative to that folder", cloud.google.com/storage-transfer/docs/filtering-objects-from-transfers);
the object lands at ``gcsDataSink.path`` + that relative name. ``overwriteWhen`` DIFFERENT skips a sink
object with the same MD5 (or CRC32C) and size, NEVER skips any existing one, ALWAYS copies. An object that
disappears between listing and copying is counted as failed (errorBreakdown NOT_FOUND), and any failure
ends the operation FAILED. Job schedules are stored but never fire: jobs run only through ``:run``.

Every write to a sink object is counted in the fake's own state (``counts.writes``), the evidence for
exactly-once tests. Test control, not STS: ``/_fake/config`` (copy rate, time spent QUEUED), ``/_fake/hold``
(an IN_PROGRESS operation copies nothing more and does not finish until released), ``/_fake/inject`` (the
next operation fails with a message), ``/_fake/state``, ``/_fake/reset`` and ``/_fake/health``.

Requests to ``/v1`` need ``Authorization: Bearer <any token>``; the header is never logged.
Run as ``python -m lc2backup.testing.gcp.sts --port P --gcs-endpoint URL``; ``FakeStorageTransfer`` starts it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from aiohttp.typedefs import Handler
from yarl import URL

from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.servers import LoopbackServer, call_json

Json = dict[str, Any]

log = logging.getLogger("fake-sts")

OPERATION_TYPE = "type.googleapis.com/google.storagetransfer.v1.TransferOperation"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"
JOB_STATUSES = ("STATUS_UNSPECIFIED", "ENABLED", "DISABLED", "DELETED")
OVERWRITE_WHEN = ("OVERWRITE_WHEN_UNSPECIFIED", "DIFFERENT", "NEVER", "ALWAYS")
ACTIVE = frozenset({"QUEUED", "IN_PROGRESS", "PAUSED", "SUSPENDING"})
# TransferJob.name in the discovery document: non-POSIX names must not start with transferJobs/OPI
JOB_NAME = re.compile(r"transferJobs/(?!OPI)[A-Za-z0-9._~-]*[A-Za-z0-9]")
MAX_PREFIXES = 1000
MAX_PREFIX_BYTES = 1024
MAX_ERROR_LOG_ENTRIES = 5  # "At most 5 error log entries are recorded for a given error code"
MAX_PAGE_SIZE = 256
RPC_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}  # fmt: skip
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
}  # fmt: skip
COUNTERS = (
    "objectsFoundFromSource", "bytesFoundFromSource", "objectsCopiedToSink", "bytesCopiedToSink",
    "objectsFromSourceSkippedBySync", "bytesFromSourceSkippedBySync", "objectsFromSourceFailed",
    "bytesFromSourceFailed",
)  # fmt: skip


class ApiError(Exception):
    """An error answered in Google's JSON error format (``google.rpc.Status`` names as ``status``)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        code = HTTP_STATUS.get(self.status, 500)
        body = {"error": {"code": code, "message": self.message, "status": self.status}}
        return web.json_response(body, status=code)


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC))


def enum_name(value: object, names: tuple[str, ...], what: str) -> str:
    """Requests carry enums as integers (``enum-encoding=int``); other clients send names."""
    if value is None:
        return names[0]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value in names:
        return value
    raise invalid(f"Invalid value for {what}: {value!r}")


# --- validation of a TransferJob ------------------------------------------------------------------------


def check_prefixes(prefixes: object, what: str) -> list[str]:
    if prefixes is None:
        return []
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise invalid(f"{what} must be a list of strings")
    if len(prefixes) > MAX_PREFIXES:
        raise invalid(f"{what} has {len(prefixes)} entries; the maximum is {MAX_PREFIXES}")
    for prefix in prefixes:
        if not prefix:
            raise invalid(f"{what} must not contain an empty prefix")
        if prefix.startswith("/"):
            raise invalid(f"{what} entry {prefix!r} must omit the leading slash")
        if "\r" in prefix or "\n" in prefix:
            raise invalid(f"{what} entry {prefix!r} must not contain carriage return or line feed")
        if len(prefix.encode()) > MAX_PREFIX_BYTES:
            raise invalid(f"{what} entry is longer than {MAX_PREFIX_BYTES} bytes")
        # STS takes '*' literally; refusing it catches a caller who meant a glob (a literal '*' in a
        # Liferay object name does not occur).
        if "*" in prefix or "?" in prefix:
            raise invalid(
                f"{what} entry {prefix!r}: Wildcard matching and regular expression matching are not supported"
            )
    ordered = sorted(prefixes)
    for first, second in zip(ordered, ordered[1:], strict=False):
        if second.startswith(first):
            raise invalid(f"{what}: {first!r} is a prefix of {second!r}; each must be a distinct portion")
    return list(prefixes)


def check_gcs_data(spec: Json, key: str) -> Json:
    data = spec.get(key)
    if not isinstance(data, dict) or not data.get("bucketName"):
        raise invalid(f"transferSpec.{key}.bucketName is required")
    path = data.get("path") or ""
    if not isinstance(path, str) or (path and not path.endswith("/")):
        raise invalid(f"transferSpec.{key}.path must be empty or end with '/': {path!r}")
    return {**data, "path": path}


def normalized_job(body: Json) -> Json:
    """The job as stored: validated, enums as names."""
    if not body.get("projectId"):
        raise invalid("projectId is required")
    spec = body.get("transferSpec")
    if not isinstance(spec, dict):
        raise invalid("transferSpec is required")
    unsupported = sorted(k for k in spec if k.endswith(("DataSource", "DataSink")) and not k.startswith("gcs"))
    if unsupported:
        raise ApiError("UNIMPLEMENTED", f"this fake transfers between GCS buckets only, not {unsupported}")
    spec = {**spec, "gcsDataSource": check_gcs_data(spec, "gcsDataSource")}
    spec["gcsDataSink"] = check_gcs_data(spec, "gcsDataSink")
    conditions = spec.get("objectConditions") or {}
    includes = check_prefixes(conditions.get("includePrefixes"), "objectConditions.includePrefixes")
    excludes = check_prefixes(conditions.get("excludePrefixes"), "objectConditions.excludePrefixes")
    for prefix in excludes:
        if includes and not any(prefix.startswith(i) for i in includes):
            raise invalid(f"exclude prefix {prefix!r} must start with one of the include prefixes")
    if conditions.get("matchGlob"):
        raise ApiError("UNIMPLEMENTED", "objectConditions.matchGlob is not supported by this fake")
    options = dict(spec.get("transferOptions") or {})
    options["overwriteWhen"] = enum_name(options.get("overwriteWhen"), OVERWRITE_WHEN, "overwriteWhen")
    if options.get("deleteObjectsUniqueInSink") or options.get("deleteObjectsFromSourceAfterTransfer"):
        raise ApiError("UNIMPLEMENTED", "deleting objects is not supported by this fake")
    spec["transferOptions"] = options
    status = enum_name(body.get("status"), JOB_STATUSES, "status")
    return {**body, "transferSpec": spec, "status": "ENABLED" if status == "STATUS_UNSPECIFIED" else status}


def overwrite_mode(spec: Json) -> str:
    options = spec.get("transferOptions") or {}
    mode = str(options.get("overwriteWhen") or "OVERWRITE_WHEN_UNSPECIFIED")
    if mode == "OVERWRITE_WHEN_UNSPECIFIED":
        return "ALWAYS" if options.get("overwriteObjectsAlreadyExistingInSink") else "DIFFERENT"
    return mode


def same_content(source: Json, sink: Json) -> bool:
    if str(source.get("size")) != str(sink.get("size")):
        return False
    for checksum in ("md5Hash", "crc32c"):
        if source.get(checksum) and sink.get(checksum):
            return bool(source[checksum] == sink[checksum])
    return False


# --- operations --------------------------------------------------------------------------------------------


@dataclass
class Operation:
    name: str
    project_id: str
    job: Json
    sequence: int = 0  # the order of creation, for listing newest first
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "QUEUED"
    end_time: str | None = None
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    error_counts: dict[str, int] = field(default_factory=dict)
    error_entries: dict[str, list[Json]] = field(default_factory=dict)
    injected: tuple[str, str] | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def cancel_requested(self) -> bool:
        return self.cancelled.is_set()

    @property
    def done(self) -> bool:
        return self.status not in ACTIVE

    def error(self, code: str, url: str, detail: str) -> None:
        self.error_counts[code] = self.error_counts.get(code, 0) + 1
        entries = self.error_entries.setdefault(code, [])
        if len(entries) < MAX_ERROR_LOG_ENTRIES:
            entries.append({"url": url, "errorDetails": [detail]})

    def finish(self) -> None:
        if self.cancel_requested:
            self.status = "ABORTED"
        else:
            self.status = "FAILED" if self.error_counts else "SUCCESS"
        self.end_time = now_rfc3339()

    def metadata(self) -> Json:
        meta: Json = {
            "@type": OPERATION_TYPE,
            "name": self.name,
            "projectId": self.project_id,
            "transferSpec": self.job["transferSpec"],
            "startTime": rfc3339(self.created),
            "status": self.status,
            "counters": {k: str(v) for k, v in self.counters.items()},
            "transferJobName": self.job["name"],
        }
        for key in ("notificationConfig", "loggingConfig"):
            if key in self.job:
                meta[key] = self.job[key]
        if self.end_time:
            meta["endTime"] = self.end_time
        if self.error_counts:
            meta["errorBreakdowns"] = [
                {"errorCode": code, "errorCount": str(count), "errorLogEntries": self.error_entries[code]}
                for code, count in self.error_counts.items()
            ]
        return meta

    def to_json(self) -> Json:
        body: Json = {"name": self.name, "metadata": self.metadata(), "done": self.done}
        if self.status == "SUCCESS":
            body["response"] = {"@type": EMPTY_TYPE}
        elif self.status == "ABORTED":
            body["error"] = {"code": RPC_CODES["CANCELLED"], "message": "The transfer operation was cancelled."}
        elif self.status == "FAILED":
            code = next(iter(self.error_counts))
            total = sum(self.error_counts.values())
            body["error"] = {"code": RPC_CODES.get(code, 2), "message": f"{total} error(s) during transfer: {code}"}
        return body


class SourceMissing(Exception):
    pass


class Gcs:
    """The few GCS JSON API calls the transfer needs, against fake-gcs-server over HTTP."""

    def __init__(self, session: ClientSession, endpoint: str) -> None:
        self.session = session
        self.endpoint = endpoint.rstrip("/")

    def _object_url(self, bucket: str, name: str) -> str:
        return f"{self.endpoint}/storage/v1/b/{quote(bucket)}/o/{quote(name)}"

    async def bucket_exists(self, bucket: str) -> bool:
        async with self.session.get(URL(f"{self.endpoint}/storage/v1/b/{quote(bucket)}", encoded=True)) as resp:
            if resp.status == 404:
                return False
            resp.raise_for_status()
            return True

    async def list_objects(self, bucket: str, prefix: str) -> AsyncIterator[list[Json]]:
        token = ""
        while True:
            query = {"prefix": prefix, "maxResults": "1000"} | ({"pageToken": token} if token else {})
            url = f"{self.endpoint}/storage/v1/b/{quote(bucket)}/o?{urllib.parse.urlencode(query)}"
            async with self.session.get(URL(url, encoded=True)) as resp:
                if resp.status == 404:
                    raise SourceMissing(bucket)
                resp.raise_for_status()
                page = await resp.json()
            yield list(page.get("items") or [])
            token = page.get("nextPageToken") or ""
            if not token:
                return

    async def get(self, bucket: str, name: str) -> Json | None:
        async with self.session.get(URL(self._object_url(bucket, name), encoded=True)) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            result: Json = await resp.json()
            return result

    async def copy(self, bucket: str, name: str, sink_bucket: str, sink_name: str) -> Json | None:
        """Server-side copy; None when the source object (or the sink bucket) is gone."""
        url = f"{self._object_url(bucket, name)}/copyTo/b/{quote(sink_bucket)}/o/{quote(sink_name)}"
        async with self.session.post(URL(url, encoded=True), json={}) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            result: Json = await resp.json()
            return result


def quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


@dataclass
class Config:
    objects_per_second: float | None = None
    queued_seconds: float = 0.0


@dataclass
class FakeSts:
    """The service's state (jobs, operations, counts) and the transfers it runs, one per process."""

    gcs_endpoint: str
    jobs: dict[str, Json] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    config: Config = field(default_factory=Config)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    injected: tuple[str, str] | None = None
    counts: Json = field(default_factory=dict)
    _gcs: Gcs | None = None
    _sequence: int = 0

    def __post_init__(self) -> None:
        self.counts = self.fresh_counts()
        self.released.set()

    @property
    def held(self) -> bool:
        return not self.released.is_set()

    def hold(self, on: bool) -> None:
        if on:
            self.released.clear()
        else:
            self.released.set()

    async def until_released(self, op: Operation) -> None:
        """Return once the fake is not held, or the operation is cancelled."""
        if self.released.is_set() or op.cancel_requested:
            return
        waits = [asyncio.ensure_future(self.released.wait()), asyncio.ensure_future(op.cancelled.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    @staticmethod
    def fresh_counts() -> Json:
        return {
            "transferJobs.create": 0,
            "alreadyExists": 0,
            "transferJobs.run": 0,
            "runRefused": 0,
            "unauthenticated": 0,
            "writes": {},
        }

    @property
    def gcs(self) -> Gcs:
        assert self._gcs is not None, "the app is not running"
        return self._gcs

    async def lifespan(self, _app: web.Application) -> AsyncIterator[None]:
        async with ClientSession(timeout=ClientTimeout(total=60)) as session:
            self._gcs = Gcs(session, self.gcs_endpoint)
            yield
            await self.stop_operations()

    async def stop_operations(self) -> None:
        tasks = [op.task for op in self.operations.values() if op.task is not None and not op.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- jobs ---

    async def create_job(self, body: Json) -> Json:
        name = body.get("name") or ""
        if not name:
            self._sequence += 1
            name = f"transferJobs/{time.time_ns()}{self._sequence}"
        if not isinstance(name, str) or len(name) > 128 or not JOB_NAME.fullmatch(name):
            raise invalid(
                f"Invalid job name {name!r}: it must start with 'transferJobs/', end with a letter or a digit, "
                "be at most 128 characters and not start with 'transferJobs/OPI'"
            )
        job = normalized_job({**body, "name": name})
        self.refuse_existing(name)
        spec = job["transferSpec"]
        root = spec["gcsDataSource"]["path"]
        conditions = spec.get("objectConditions") or {}
        if root and any(
            p.startswith(root) for k in ("includePrefixes", "excludePrefixes") for p in conditions.get(k) or []
        ):
            # legal, but STS matches prefixes relative to the source path: 'dl/x' would match 'dl/dl/x'
            log.warning("%s: prefixes are relative to the source path %r; some repeat it", name, root)
        for key in ("gcsDataSource", "gcsDataSink"):
            bucket = spec[key]["bucketName"]
            if not await self.gcs.bucket_exists(bucket):
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Failed to obtain the location of the GCS bucket {bucket} "
                    "Additional details: The specified bucket does not exist.",
                )
        self.refuse_existing(name)  # a concurrent create may have won while the buckets were checked
        stamp = now_rfc3339()
        job |= {"creationTime": stamp, "lastModificationTime": stamp}
        self.jobs[name] = job
        self.counts["transferJobs.create"] += 1
        log.info("created %s", name)
        return job

    def refuse_existing(self, name: str) -> None:
        if name in self.jobs:
            self.counts["alreadyExists"] += 1
            raise ApiError("ALREADY_EXISTS", f"Transfer job {name} already exists.")

    def job(self, name: str, project_id: object) -> Json:
        if not project_id:
            raise invalid("projectId is required")
        job = self.jobs.get(name)
        if job is None or job["projectId"] != project_id:
            raise ApiError("NOT_FOUND", f"Transfer job {name} does not exist in project {project_id}.")
        return job

    def run_job(self, name: str, project_id: object) -> Operation:
        job = self.job(name, project_id)
        if job["status"] != "ENABLED":
            raise ApiError("FAILED_PRECONDITION", f"Transfer job {name} is {job['status']}.")
        active = [op.name for op in self.operations.values() if op.job["name"] == name and not op.done]
        if active:
            self.counts["runRefused"] += 1
            raise ApiError(
                "FAILED_PRECONDITION",
                f"Transfer job {name} already has an active transfer operation {active[0]}; "
                "a job has at most one active operation.",
            )
        op_name = f"transferOperations/transferJobs-{name.removeprefix('transferJobs/')}-{time.time_ns()}"
        self._sequence += 1
        op = Operation(op_name, job["projectId"], job, sequence=self._sequence, injected=self.injected)
        self.injected = None
        self.operations[op_name] = op
        job["latestOperationName"] = op_name
        self.counts["transferJobs.run"] += 1
        op.task = asyncio.create_task(self.transfer(op), name=op_name)
        log.info("started %s", op_name)
        return op

    # --- the transfer ---

    async def transfer(self, op: Operation) -> None:
        try:
            if self.config.queued_seconds > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(op.cancelled.wait(), self.config.queued_seconds)
            if not op.cancel_requested:
                op.status = "IN_PROGRESS"
                await self.copy_all(op)
                await self.until_released(op)  # a held operation does not finish either
        except asyncio.CancelledError:
            op.cancelled.set()
            op.finish()
            raise
        except Exception as exc:  # never leave an operation running because of a bug or an outage
            log.exception("%s failed", op.name)
            op.error("UNAVAILABLE", self.gcs_endpoint, f"{type(exc).__name__}: {exc}")
        op.finish()
        log.info("%s ended %s %s", op.name, op.status, op.counters)

    async def copy_all(self, op: Operation) -> None:
        spec = op.job["transferSpec"]
        source, sink = spec["gcsDataSource"], spec["gcsDataSink"]
        if op.injected is not None:
            code, message = op.injected
            op.error(code, f"gs://{source['bucketName']}/{source['path']}", message)
            return
        if not await self.gcs.bucket_exists(sink["bucketName"]):
            op.error("NOT_FOUND", f"gs://{sink['bucketName']}/", "The sink bucket does not exist.")
            return
        conditions = spec.get("objectConditions") or {}
        includes: list[str] = conditions.get("includePrefixes") or []
        excludes: list[str] = conditions.get("excludePrefixes") or []
        selected: list[Json] = []
        try:
            async for page in self.gcs.list_objects(source["bucketName"], source["path"]):
                for item in page:
                    relative = item["name"][len(source["path"]) :]
                    if includes and not relative.startswith(tuple(includes)):
                        continue
                    if excludes and relative.startswith(tuple(excludes)):
                        continue
                    selected.append(item)
                    op.counters["objectsFoundFromSource"] += 1
                    op.counters["bytesFoundFromSource"] += int(item.get("size") or 0)
        except SourceMissing:
            op.error("NOT_FOUND", f"gs://{source['bucketName']}/", "The source bucket does not exist.")
            return
        mode = overwrite_mode(spec)
        for item in selected:
            await self.until_released(op)
            if op.cancel_requested:
                return
            await self.copy_one(op, item, sink, item["name"][len(source["path"]) :], mode)
            if self.config.objects_per_second:
                await asyncio.sleep(1.0 / self.config.objects_per_second)

    async def copy_one(self, op: Operation, item: Json, sink: Json, relative: str, mode: str) -> None:
        bucket, size = op.job["transferSpec"]["gcsDataSource"]["bucketName"], int(item.get("size") or 0)
        sink_name = sink["path"] + relative
        if mode != "ALWAYS":
            existing = await self.gcs.get(sink["bucketName"], sink_name)
            if existing is not None and (mode == "NEVER" or same_content(item, existing)):
                op.counters["objectsFromSourceSkippedBySync"] += 1
                op.counters["bytesFromSourceSkippedBySync"] += size
                return
        copied = await self.gcs.copy(bucket, item["name"], sink["bucketName"], sink_name)
        if copied is None:
            op.counters["objectsFromSourceFailed"] += 1
            op.counters["bytesFromSourceFailed"] += size
            op.error("NOT_FOUND", f"gs://{bucket}/{item['name']}", "The object was not found at the source.")
            return
        writes: dict[str, int] = self.counts["writes"]
        key = f"{sink['bucketName']}/{sink_name}"
        writes[key] = writes.get(key, 0) + 1
        op.counters["objectsCopiedToSink"] += 1
        op.counters["bytesCopiedToSink"] += int(copied.get("size") or size)

    # --- listing ---

    def list_operations(self, raw_filter: str, page_size: int, page_token: str) -> Json:
        try:
            criteria = json.loads(raw_filter) if raw_filter else None
        except json.JSONDecodeError as exc:
            raise invalid(f"filter is not valid JSON: {exc}") from exc
        if not isinstance(criteria, dict):
            raise invalid("filter is required: a JSON object with projectId")
        project_id = criteria.get("projectId") or criteria.get("project_id")
        if not project_id:
            raise invalid("filter.projectId is required")
        job_names = set(criteria.get("jobNames") or criteria.get("job_names") or [])
        op_names = {
            n if n.startswith("transferOperations/") else f"transferOperations/{n}"
            for n in criteria.get("operationNames") or criteria.get("operation_names") or []
        }
        statuses = {s.upper() for s in criteria.get("transferStatuses") or criteria.get("transfer_statuses") or []}
        job_pattern = pattern(criteria.get("jobNamePattern") or criteria.get("job_name_pattern"))
        op_pattern = pattern(criteria.get("operationNamePattern") or criteria.get("operation_name_pattern"))
        after = timestamp(criteria.get("minCreationTime") or criteria.get("min_creation_time"))
        before = timestamp(criteria.get("maxCreationTime") or criteria.get("max_creation_time"))
        matching = [
            op
            for op in sorted(self.operations.values(), key=lambda o: o.sequence, reverse=True)
            if op.project_id == project_id
            and (not job_names or op.job["name"] in job_names)
            and (not op_names or op.name in op_names)
            and (not statuses or op.status in statuses)
            and (job_pattern is None or job_pattern.fullmatch(op.job["name"]))
            and (op_pattern is None or op_pattern.fullmatch(op.name))
            and (after is None or op.created >= after)
            and (before is None or op.created <= before)
        ]
        start = int(page_token) if page_token.isdigit() else 0
        size = min(page_size, MAX_PAGE_SIZE) if page_size > 0 else MAX_PAGE_SIZE
        body: Json = {"operations": [op.to_json() for op in matching[start : start + size]]}
        if start + size < len(matching):
            body["nextPageToken"] = str(start + size)
        return body

    def operation(self, name: str) -> Operation:
        op = self.operations.get(name)
        if op is None:
            raise ApiError("NOT_FOUND", f"Transfer operation {name} does not exist.")
        return op

    def state(self) -> Json:
        return {
            "jobs": list(self.jobs.values()),
            "operations": [op.to_json() for op in self.operations.values()],
            "counts": self.counts,
            "config": {"objectsPerSecond": self.config.objects_per_second, "queuedSeconds": self.config.queued_seconds},
            "held": self.held,
        }

    async def reset(self) -> None:
        await self.stop_operations()
        self.jobs.clear()
        self.operations.clear()
        self.config = Config()
        self.released.set()
        self.injected = None
        self.counts = self.fresh_counts()


def timestamp(value: object) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"not an RFC 3339 timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def pattern(value: object) -> re.Pattern[str] | None:
    if not value:
        return None
    return re.compile(".*".join(re.escape(part) for part in str(value).split("*")))


# --- HTTP --------------------------------------------------------------------------------------------------


async def json_body(request: web.Request) -> Json:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise invalid(f"Invalid JSON payload: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    return body


class Api:
    """The HTTP face of ``FakeSts``: Storage Transfer's REST methods and the ``/_fake`` test controls."""

    def __init__(self, fake: FakeSts) -> None:
        self.fake = fake

    @web.middleware
    async def google_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/"):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                self.fake.counts["unauthenticated"] += 1
                message = "Request is missing required authentication credential."
                return ApiError("UNAUTHENTICATED", message).response()
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPNotFound:
            return ApiError("NOT_FOUND", f"No such method: {request.method} {request.path}").response()
        except web.HTTPMethodNotAllowed:
            return ApiError("UNIMPLEMENTED", f"Not implemented: {request.method} {request.path}").response()
        except Exception as exc:
            log.exception("%s %s", request.method, request.path)
            return ApiError("INTERNAL", f"{type(exc).__name__}: {exc}").response()

    # --- Storage Transfer v1 ---

    async def create_job(self, request: web.Request) -> web.Response:
        return web.json_response(await self.fake.create_job(await json_body(request)))

    async def list_jobs(self, request: web.Request) -> web.Response:
        try:
            criteria = json.loads(request.query.get("filter") or "{}")
        except json.JSONDecodeError as exc:
            raise invalid(f"filter is not valid JSON: {exc}") from exc
        project_id = criteria.get("projectId") or criteria.get("project_id")
        if not project_id:
            raise invalid("filter.projectId is required")
        names = set(criteria.get("jobNames") or criteria.get("job_names") or [])
        jobs = [
            job
            for job in self.fake.jobs.values()
            if job["projectId"] == project_id and (not names or job["name"] in names)
        ]
        return web.json_response({"transferJobs": jobs})

    async def get_job(self, request: web.Request) -> web.Response:
        name = f"transferJobs/{request.match_info['job']}"
        return web.json_response(self.fake.job(name, request.query.get("projectId")))

    async def run_job(self, request: web.Request) -> web.Response:
        name = f"transferJobs/{request.match_info['job']}"
        op = self.fake.run_job(name, (await json_body(request)).get("projectId"))
        return web.json_response(op.to_json())

    async def list_operations(self, request: web.Request) -> web.Response:
        page_size = request.query.get("pageSize", "0")
        body = self.fake.list_operations(
            request.query.get("filter", ""),
            int(page_size) if page_size.isdigit() else 0,
            request.query.get("pageToken", ""),
        )
        return web.json_response(body)

    async def get_operation(self, request: web.Request) -> web.Response:
        op = self.fake.operation(f"transferOperations/{request.match_info['op']}")
        return web.json_response(op.to_json())

    async def cancel_operation(self, request: web.Request) -> web.Response:
        op = self.fake.operation(f"transferOperations/{request.match_info['op']}")
        if not op.done:
            op.cancelled.set()
        return web.json_response({})

    # --- test controls ---

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def configure(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if "objectsPerSecond" in body:
            rate = body["objectsPerSecond"]
            self.fake.config.objects_per_second = float(rate) if rate else None
        if "queuedSeconds" in body:
            self.fake.config.queued_seconds = float(body["queuedSeconds"] or 0)
        return web.json_response(self.fake.state()["config"])

    async def hold(self, request: web.Request) -> web.Response:
        self.fake.hold(bool((await json_body(request)).get("hold")))
        return web.json_response({"hold": self.fake.held})

    async def inject(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        message = body.get("fail")
        code = str(body.get("errorCode") or "PERMISSION_DENIED")
        if code not in RPC_CODES:
            raise invalid(f"errorCode must be a google.rpc.Code name, not {code!r}")
        self.fake.injected = (code, str(message)) if message else None
        return web.json_response({"fail": message, "errorCode": code})

    async def state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.fake.state())

    async def reset(self, _request: web.Request) -> web.Response:
        await self.fake.reset()
        return web.json_response({})


def create_app(gcs_endpoint: str) -> web.Application:
    fake = FakeSts(gcs_endpoint)
    api = Api(fake)
    app = web.Application(middlewares=[api.google_errors])
    app.cleanup_ctx.append(fake.lifespan)
    job, op = "{job:[A-Za-z0-9._~-]+}", "{op:[A-Za-z0-9._~-]+}"
    app.router.add_post("/v1/transferJobs", api.create_job)
    app.router.add_get("/v1/transferJobs", api.list_jobs)
    app.router.add_get(f"/v1/transferJobs/{job}", api.get_job)
    app.router.add_post(f"/v1/transferJobs/{job}:run", api.run_job)
    app.router.add_get("/v1/transferOperations", api.list_operations)
    app.router.add_get(f"/v1/transferOperations/{op}", api.get_operation)
    app.router.add_post(f"/v1/transferOperations/{op}:cancel", api.cancel_operation)
    app.router.add_get("/_fake/health", api.health)
    app.router.add_post("/_fake/config", api.configure)
    app.router.add_post("/_fake/hold", api.hold)
    app.router.add_post("/_fake/inject", api.inject)
    app.router.add_get("/_fake/state", api.state)
    app.router.add_post("/_fake/reset", api.reset)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gcs-endpoint", required=True, help="fake-gcs-server, e.g. http://127.0.0.1:4443")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # the access log names method, path and status only: never a header (the bearer token)
    web.run_app(
        create_app(args.gcs_endpoint),
        host=args.host,
        port=args.port,
        access_log_format='"%r" %s %Tfs',
        print=None,
    )


# --- the wrapper tests use ---------------------------------------------------------------------------------


@dataclass
class FakeStorageTransfer(LoopbackServer):
    """This server as a child process on 127.0.0.1, copying inside the fake-gcs-server at ``gcs_endpoint``."""

    name = "fake-sts"
    ready_path = "/_fake/health"

    gcs_endpoint: str

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "lc2backup.testing.gcp.sts", "--port", str(self.port)]
        return [*argv, "--gcs-endpoint", self.gcs_endpoint]

    def configure(self, objects_per_second: float | None = None, queued_seconds: float | None = None) -> None:
        """Copy at most ``objects_per_second`` (None: as fast as GCS answers); stay QUEUED ``queued_seconds``."""
        self._call("POST", "config", {"objectsPerSecond": objects_per_second, "queuedSeconds": queued_seconds or 0})

    def hold(self, on: bool) -> None:
        """While held, IN_PROGRESS operations copy nothing more and do not finish."""
        self._call("POST", "hold", {"hold": on})

    def inject_failure(self, message: str, error_code: str = "PERMISSION_DENIED") -> None:
        """The next operation started ends FAILED, its errorBreakdowns carrying ``message`` under ``error_code``."""
        self._call("POST", "inject", {"fail": message, "errorCode": error_code})

    def state(self) -> Json:
        """``{"jobs", "operations", "counts": {"transferJobs.create", "alreadyExists", "transferJobs.run",
        "runRefused", "unauthenticated", "writes": {"<sink bucket>/<object>": n}}, "config", "held"}``."""
        return self._call("GET", "state")

    def reset(self) -> None:
        """Forget jobs, operations, counts, configuration, hold and injected failures."""
        self._call("POST", "reset", {})

    def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        result: Json = call_json(f"{self.endpoint}/_fake/{path}", method, body, timeout=10)
        return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
