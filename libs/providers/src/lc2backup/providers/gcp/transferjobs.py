"""A named Storage Transfer job, GCS to GCS, run once and polled: what a backup's document-library branch and a
restore's share.

STS takes no client token, so the job's name is the key: creating it again answers ALREADY_EXISTS and is taken
as done. A poll reads the job's transfer operations (``list_operations`` with the JSON filter of project and
job); none listed and none named by the job (``latestOperationName``) means the job has not run, and it is run
(STS refuses a second run while one is active: FAILED_PRECONDITION, and the active one is polled). A job is never
run twice by us, however often a poll is repeated after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lc2backup.providers.errors import ProviderNotConfigured
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.errors import GcpCall, api_status

OverwriteWhen = Literal["NEVER", "DIFFERENT", "ALWAYS"]
RUNNING = frozenset({"QUEUED", "IN_PROGRESS", "PAUSED", "SUSPENDING", "STATUS_UNSPECIFIED"})


@dataclass(frozen=True)
class GcsPath:
    bucket: str
    path: str  # empty or ending in "/", as STS wants it


def breakdown(operation: Any) -> str:
    """STS's error breakdown in one line: ``NOT_FOUND ×2 (gs://…: detail); …``."""
    from google.rpc import code_pb2

    parts = []
    for item in operation.error_breakdowns:
        code = code_pb2.Code.Name(int(item.error_code))  # google.rpc.Code: a plain protobuf enum, an int here
        entry = item.error_log_entries[0] if item.error_log_entries else None
        where = f" ({entry.url}: {'; '.join(entry.error_details)})" if entry else ""
        parts.append(f"{code} ×{item.error_count}{where}")
    return "; ".join(parts) or "no error breakdown given"


def failure(operation: Any) -> str | None:
    """Why an ended operation did not copy everything, in STS's words; None when it succeeded whole."""
    status = operation.status.name
    if status != "SUCCESS":
        return f"Storage Transfer operation {operation.name} ended {status}: {breakdown(operation)}"
    failed = int(operation.counters.objects_from_source_failed)
    if failed:
        return f"Storage Transfer operation {operation.name} could not copy {failed} objects: {breakdown(operation)}"
    return None


class TransferJobs:
    def __init__(self, clients: GcpClients) -> None:
        self._clients = clients

    def _call(self, permission: str, resource: str) -> GcpCall:
        return GcpCall(permission, resource, "", self._clients.settings.transient_retry_seconds)

    async def project(self, service: str) -> str:
        project = await self._clients.run(lambda: self._clients.project)
        if not project:
            raise ProviderNotConfigured(f"the Storage Transfer job needs a project: set LC2_GCP__PROJECT in {service}")
        return project

    async def create(
        self,
        project: str,
        name: str,
        description: str,
        source: GcsPath,
        sink: GcsPath,
        *,
        exclude_prefixes: Sequence[str] = (),
        overwrite_when: OverwriteWhen = "NEVER",
    ) -> None:
        """Create the job unless it exists (ALREADY_EXISTS: created by an earlier delivery, the name is ours).
        ``exclude_prefixes`` are relative to the source path, as STS matches them ("If you specified a folder as
        your source location, prefix filters are relative to that folder")."""
        from google.cloud import storage_transfer as sts

        transfer_job = sts.TransferJob(
            name=name,
            description=description,
            project_id=project,
            status=sts.TransferJob.Status.ENABLED,
            transfer_spec=sts.TransferSpec(
                gcs_data_source=sts.GcsData(bucket_name=source.bucket, path=source.path),
                gcs_data_sink=sts.GcsData(bucket_name=sink.bucket, path=sink.path),
                object_conditions=sts.ObjectConditions(exclude_prefixes=list(exclude_prefixes)),
                transfer_options=sts.TransferOptions(
                    overwrite_when=getattr(sts.TransferOptions.OverwriteWhen, overwrite_when)
                ),
            ),
        )
        call = self._call("storagetransfer.jobs.create", f"Storage Transfer job {name!r} in project {project!r}")
        try:
            await self._clients.run(lambda: self._clients.transfer.create_transfer_job({"transfer_job": transfer_job}))
        except Exception as exc:
            if api_status(exc) != "ALREADY_EXISTS":
                raise call.translate(exc) from exc

    async def newest(self, project: str, name: str) -> Any | None:
        """The job's newest transfer operation (``TransferOperation``); None while it has none yet, after running
        the job if it never ran."""
        operations = await self._operations(project, name)
        if operations:
            return operations[-1]  # the newest: one run per job unless STS itself retried
        if not await self._ran(project, name):
            await self._run(project, name)
        return None

    async def _operations(self, project: str, name: str) -> list[Any]:
        from google.cloud import storage_transfer as sts
        from google.longrunning import operations_pb2

        request = operations_pb2.ListOperationsRequest(
            name="transferOperations", filter=json.dumps({"projectId": project, "jobNames": [name]})
        )
        call = self._call("storagetransfer.operations.list", f"transfer operations of {name!r}")
        try:
            listed = await self._clients.run(lambda: self._clients.transfer.list_operations(request))
        except Exception as exc:
            raise call.translate(exc) from exc
        found = [sts.TransferOperation.deserialize(op.metadata.value) for op in listed.operations]
        return sorted(
            found, key=lambda op: op.start_time.timestamp() if op.start_time else float("inf")
        )  # queued: newest

    async def _ran(self, project: str, name: str) -> bool:
        """Whether the job has an operation, listed or not yet (``latestOperationName``): never run it twice."""
        call = self._call("storagetransfer.jobs.get", f"Storage Transfer job {name!r}")
        try:
            job = await self._clients.run(
                lambda: self._clients.transfer.get_transfer_job({"job_name": name, "project_id": project})
            )
        except Exception as exc:
            raise call.translate(exc) from exc
        return bool(job.latest_operation_name)

    async def _run(self, project: str, name: str) -> None:
        call = self._call("storagetransfer.jobs.run", f"Storage Transfer job {name!r}")
        try:
            await self._clients.run(
                lambda: self._clients.transfer.run_transfer_job({"job_name": name, "project_id": project})
            )
        except Exception as exc:
            if api_status(exc) != "FAILED_PRECONDITION":  # else an operation of the job is active: poll that one
                raise call.translate(exc) from exc
