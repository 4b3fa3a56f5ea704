"""The projection API (FastAPI): list, get and audit backups; request a new one.

Reads come from the PostgreSQL projection; ``POST /api/v1/backups`` validates with the same model as every
other entry point and publishes the same command as NATS users do (the backup id is returned at once; the
backup appears in the projection a moment later). Errors are JSON: 401/403/404 ``{"detail"}``, 422
``{"detail", "problems": [{field, message, type}]}``.

Every ``/api/v1`` route needs a bearer token (``auth``); a tenant sees and requests backups of its own projects
only, and another tenant's backup is answered exactly like one that does not exist. ``/healthz``, ``/readyz``
(probes) and the OpenAPI document (``/openapi.json``, ``/docs``: the same text as ``contracts/openapi.json``)
need none.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from nats.aio.client import Client as NatsClient
from pydantic import Field

from lc2backup.archiver import queries, restores
from lc2backup.archiver.archiving import Projector
from lc2backup.archiver.auth import Tenant, TokenBook, current_tenant, require_project
from lc2backup.archiver.errors import ApiRefusal, Unauthenticated, Unprocessable
from lc2backup.archiver.projection import checkpoint
from lc2backup.archiver.restores import Restorable, RestoreDetail, RestoreList, RestoreSummary
from lc2backup.archiver.rows import ApiModel, BackupSummary
from lc2backup.domain import (
    BackupRequestSpec,
    BackupState,
    Phase,
    Problem,
    RequestSource,
    SpecInvalid,
    backup_id_for_request,
    complete_spec,
    project_request_id,
)
from lc2backup.domain.restore_state import RestoreState
from lc2backup.domain.restoring import RestoreRequestSpec, restore_id_for_request
from lc2backup.domain.spec import DNS_LABEL
from lc2backup.eventing import Topology

API_PREFIX = "/api/v1"
MAX_PAGE_SIZE = 200
UUID_PATTERN = r"^[0-9a-fA-F-]{36}$"
# Ids are UUIDs; any other id of URL-unreserved characters is simply not found. Nothing a client might rewrite
# on the way: no '%' (an escape: schemathesis sends '%01' as is, the server reads U+0001), no '.'/'..' segment.
BACKUP_ID = r"^[0-9A-Za-z_~-][0-9A-Za-z._~-]*$"


class BackupDetail(BackupSummary):
    status: BackupState = Field(description="The full folded state, including each branch")


class BackupList(ApiModel):
    items: list[BackupSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class EventOut(ApiModel):
    seq: int
    event_id: uuid.UUID
    type: str
    schema_version: int
    occurred_at: datetime
    correlation_id: str | None
    causation_id: str | None
    producer: str
    traceparent: str | None
    data: dict[str, Any]


class EventList(ApiModel):
    backup_id: str
    items: list[EventOut]


class Accepted(ApiModel):
    backup_id: str
    status: str = "Accepted"
    location: str


class ProjectionProgress(ApiModel):
    """Where the projection stands, read from its stores at each request (not what this process applied)."""

    checkpoint: int | None = Field(
        description="Stream sequence of the last event the projection holds, as stored in PostgreSQL; "
        "null when PostgreSQL does not answer"
    )
    stream_last_sequence: int | None = Field(
        description="Sequence of the last event in the event stream; null when NATS does not answer"
    )
    lag: int | None = Field(description="Events in the stream not projected yet: streamLastSequence - checkpoint")


class Readiness(ApiModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, bool] = Field(
        description="nats and postgres answer; projection: the projector has caught up once since it started"
    )
    projection: ProjectionProgress | None = None


class ErrorOut(ApiModel):
    detail: str
    problems: list[Problem] | None = None


@dataclass
class ApiResources:
    pool: asyncpg.Pool
    nc: NatsClient
    topology: Topology
    projector: Projector | None = None


def _res(request: Request) -> ApiResources:
    resources: ApiResources = request.app.state.resources
    return resources


Responses = dict[int | str, dict[str, Any]]
UNAUTHENTICATED: Responses = {
    401: {
        "model": ErrorOut,
        "description": "No bearer token, or one that is not configured",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    }
}
FORBIDDEN: Responses = {403: {"model": ErrorOut, "description": "The token's tenant may not use this project"}}
NOT_FOUND: Responses = {
    404: {"model": ErrorOut, "description": "No backup with this id (or none the token's tenant may see)"}
}
INVALID: Responses = {422: {"model": ErrorOut, "description": "Invalid input, with every problem and its field"}}
UNREADABLE: Responses = {400: {"model": ErrorOut, "description": "The body could not be read (not UTF-8 JSON)"}}
Caller = Annotated[Tenant, Depends(current_tenant)]


router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["health"],
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is not ready"}},
)
async def readyz(request: Request, response: Response) -> Readiness:
    res = _res(request)
    checks: dict[str, bool] = {"nats": res.nc.is_connected}
    stored: int | None = None
    try:
        async with asyncio.timeout(2):
            stored = await checkpoint(res.pool)
        checks["postgres"] = True
    except Exception:
        checks["postgres"] = False
    progress: ProjectionProgress | None = None
    if res.projector is not None:
        checks["projection"] = res.projector.ready
        last = await _stream_last_sequence(res) if checks["nats"] else None
        lag = last - stored if last is not None and stored is not None else None
        progress = ProjectionProgress(checkpoint=stored, stream_last_sequence=last, lag=lag)
    ready = all(checks.values())
    response.status_code = 200 if ready else 503
    return Readiness(status="ready" if ready else "not ready", checks=checks, projection=progress)


async def _stream_last_sequence(res: ApiResources) -> int | None:
    try:
        info = await res.nc.jetstream(timeout=2).stream_info(res.topology.events_stream)
    except Exception:
        return None
    return info.state.last_seq


@router.get(
    f"{API_PREFIX}/backups",
    response_model=BackupList,
    tags=["backups"],
    responses={**UNAUTHENTICATED, **FORBIDDEN, **INVALID},
)
async def list_backups(
    request: Request,
    tenant: Caller,
    project_id: Annotated[str | None, Query(alias="projectId", max_length=63, pattern=DNS_LABEL)] = None,
    environment: Annotated[str | None, Query(max_length=63, pattern=DNS_LABEL)] = None,
    state: Annotated[Phase | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=81, pattern=queries.CURSOR, description="A nextCursor from the previous page")
    ] = None,
) -> BackupList:
    """Newest first; filter by project, environment and state; follow ``nextCursor`` for more. Only the
    projects of the caller's tenant are listed; asking for another project is 403."""
    if project_id is not None:
        require_project(tenant, project_id)
    try:
        page = await queries.list_backups(
            _res(request).pool,
            project_id=project_id,
            environment=environment,
            state=state,
            limit=limit,
            cursor=cursor,
            projects=tenant.visible_projects(),
        )
    except queries.BadCursor as exc:
        raise Unprocessable([Problem(field="query.cursor", message=str(exc), type="value_error")]) from exc
    return BackupList(items=[BackupSummary.of_row(r) for r in page.rows], next_cursor=page.next_cursor)


def _not_found(backup_id: str) -> HTTPException:
    """The one answer for an unknown backup and for another tenant's: nothing tells them apart."""
    return HTTPException(404, f"backup {backup_id} not found")


@router.get(
    f"{API_PREFIX}/backups/{{backup_id}}",
    response_model=BackupDetail,
    tags=["backups"],
    responses={**UNAUTHENTICATED, **NOT_FOUND, **INVALID},
)
async def get_backup(
    request: Request, tenant: Caller, backup_id: Annotated[str, Path(max_length=64, pattern=BACKUP_ID)]
) -> BackupDetail:
    """One backup with its full state: both branches, their operations, counters and timings."""
    row = await queries.get_backup(_res(request).pool, backup_id, tenant.visible_projects())
    if row is None:
        raise _not_found(backup_id)
    return BackupDetail.of_row(row, status=BackupState.model_validate_json(row["state_doc"]))


@router.get(
    f"{API_PREFIX}/backups/{{backup_id}}/events",
    response_model=EventList,
    tags=["backups"],
    responses={**UNAUTHENTICATED, **NOT_FOUND, **INVALID},
)
async def get_events(
    request: Request, tenant: Caller, backup_id: Annotated[str, Path(max_length=64, pattern=BACKUP_ID)]
) -> EventList:
    """The backup's audit trail: every event in order, with its envelope."""
    rows = await queries.backup_events(_res(request).pool, backup_id, tenant.visible_projects())
    if not rows:
        raise _not_found(backup_id)
    return EventList(backup_id=backup_id, items=[_event_out(r) for r in rows])


def _event_out(r: asyncpg.Record) -> EventOut:
    return EventOut(
        seq=r["seq"],
        event_id=r["event_id"],
        type=r["type"],
        schema_version=r["schema_version"],
        occurred_at=r["occurred_at"],
        correlation_id=r["correlation_id"],
        causation_id=r["causation_id"],
        producer=r["producer"],
        traceparent=r["traceparent"],
        data=json.loads(r["payload"]),
    )


@router.post(
    f"{API_PREFIX}/backups",
    status_code=202,
    response_model=Accepted,
    tags=["backups"],
    responses={**UNREADABLE, **UNAUTHENTICATED, **FORBIDDEN, **INVALID},
)
async def request_backup(
    request: Request,
    response: Response,
    tenant: Caller,
    spec: BackupRequestSpec,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> Accepted:
    """Request a backup (the same command NATS users publish) for one of the tenant's projects. Send
    ``Idempotency-Key`` to make retries safe: the same key names the same backup within a project; the key
    ``manifest:<namespace>/<name>`` names the backup of that BackupRequest manifest sent through NATS or the CLI."""
    try:
        checked = complete_spec(spec)  # the body was validated as a BackupRequestSpec: only what a model cannot say
    except SpecInvalid as invalid:
        raise Unprocessable(invalid.problems) from invalid
    require_project(tenant, checked.project_id)
    # Keys are scoped by project: another tenant reusing a key cannot claim (or block) this project's backup.
    request_id = project_request_id(checked.project_id, idempotency_key) if idempotency_key else None
    backup_id = backup_id_for_request(request_id) if request_id else str(uuid.uuid4())
    res = _res(request)
    command = {
        "backupId": backup_id,
        "requestId": idempotency_key or backup_id,
        "spec": checked.model_dump(mode="json", by_alias=True),
        "source": RequestSource(kind="api", command_id=idempotency_key or backup_id).model_dump(
            mode="json", by_alias=True, exclude_none=True
        ),
    }
    await res.nc.jetstream().publish(
        res.topology.request_subject,
        json.dumps(command).encode(),
        stream=res.topology.commands_stream,
        headers={"Nats-Msg-Id": f"api:{backup_id}"},
    )
    location = f"{API_PREFIX}/backups/{backup_id}"
    response.headers["Location"] = location
    return Accepted(backup_id=backup_id, location=location)


class RestoreAccepted(ApiModel):
    restore_id: str
    status: str = "Accepted"
    location: str


RESTORE_NOT_FOUND: Responses = {
    404: {"model": ErrorOut, "description": "No restore (or backup) with this id, or none the token's tenant may see"}
}


async def _publish_restore(
    request: Request, response: Response, tenant: Tenant, spec: RestoreRequestSpec, idempotency_key: str | None
) -> RestoreAccepted:
    """Publish a restore command after the tenant checks: it may use the backup's project and the target's."""
    res = _res(request)
    row = await queries.get_backup(res.pool, spec.backup_id, tenant.visible_projects())
    if row is None:
        raise _not_found(spec.backup_id)
    require_project(tenant, row["project_id"])
    if spec.target is not None:
        require_project(tenant, spec.target.project_id)
    scoped = f"{row['project_id']}/{idempotency_key}" if idempotency_key else None
    restore_id = restore_id_for_request(scoped) if scoped else str(uuid.uuid4())
    command = {"restoreId": restore_id, "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True)}
    await res.nc.jetstream().publish(
        res.topology.restore_subject,
        json.dumps(command).encode(),
        stream=res.topology.commands_stream,
        headers={"Nats-Msg-Id": f"api:restore:{restore_id}"},
    )
    location = f"{API_PREFIX}/restores/{restore_id}"
    response.headers["Location"] = location
    return RestoreAccepted(restore_id=restore_id, location=location)


@router.post(
    f"{API_PREFIX}/restores",
    status_code=202,
    response_model=RestoreAccepted,
    tags=["restores"],
    responses={**UNREADABLE, **UNAUTHENTICATED, **FORBIDDEN, **RESTORE_NOT_FOUND, **INVALID},
)
async def request_restore(
    request: Request,
    response: Response,
    tenant: Caller,
    spec: RestoreRequestSpec,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> RestoreAccepted:
    """Restore a Succeeded backup into new targets (the default), or over live ones only when confirmed. The
    restore is validated by the restorer and appears in ``/restores`` a moment later (Rejected with every
    reason, or Validating → Restoring → Succeeded/Failed)."""
    return await _publish_restore(request, response, tenant, spec, idempotency_key)


@router.post(
    f"{API_PREFIX}/backups/{{backup_id}}/verify",
    status_code=202,
    response_model=RestoreAccepted,
    tags=["restores"],
    responses={**UNAUTHENTICATED, **FORBIDDEN, **RESTORE_NOT_FOUND, **INVALID},
)
async def verify_backup(
    request: Request,
    response: Response,
    tenant: Caller,
    backup_id: Annotated[str, Path(max_length=64, pattern=UUID_PATTERN)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
    keep_failed_hours: Annotated[
        int, Query(alias="keepFailedHours", ge=0, le=720, description="How long a failed one's scratch is kept")
    ] = 24,
) -> RestoreAccepted:
    """Prove the backup restores: a restore into scratch targets, compared with what the backup recorded (row
    counts and checksums per table, Liferay smoke queries, objects against the manifest), then removed (a failed
    one's after ``keepFailedHours``, for inspection). The verdict is the restore's ``status.verification``; a
    passed one makes the backup its environment's ``/restorable`` point."""
    spec = RestoreRequestSpec.model_validate(
        {"backupId": backup_id.lower(), "purpose": "verification", "keepFailedHours": keep_failed_hours}
    )
    return await _publish_restore(request, response, tenant, spec, idempotency_key)


@router.get(
    f"{API_PREFIX}/restores",
    response_model=RestoreList,
    tags=["restores"],
    responses={**UNAUTHENTICATED, **INVALID},
)
async def list_restores(
    request: Request,
    tenant: Caller,
    backup_id: Annotated[str | None, Query(alias="backupId", max_length=64, pattern=BACKUP_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> RestoreList:
    """Restores and verifications, newest first (of the tenant's projects, as source or target)."""
    rows = await restores.list_restores(_res(request).pool, tenant.visible_projects(), backup_id, limit)
    return RestoreList(items=[RestoreSummary.of_row(r) for r in rows])


def _restore_not_found(restore_id: str) -> HTTPException:
    return HTTPException(404, f"restore {restore_id} not found")


@router.get(
    f"{API_PREFIX}/restores/{{restore_id}}",
    response_model=RestoreDetail,
    tags=["restores"],
    responses={**UNAUTHENTICATED, **RESTORE_NOT_FOUND, **INVALID},
)
async def get_restore(
    request: Request, tenant: Caller, restore_id: Annotated[str, Path(max_length=64, pattern=BACKUP_ID)]
) -> RestoreDetail:
    """One restore with its plan, both branches' progress, the verdict of a verification and every reason."""
    row = await restores.get_restore(_res(request).pool, restore_id, tenant.visible_projects())
    if row is None:
        raise _restore_not_found(restore_id)
    summary = RestoreSummary.of_row(row)
    return RestoreDetail(
        **summary.model_dump(by_alias=False), status=RestoreState.model_validate_json(row["state_doc"])
    )


@router.get(
    f"{API_PREFIX}/restores/{{restore_id}}/events",
    response_model=EventList,
    tags=["restores"],
    responses={**UNAUTHENTICATED, **RESTORE_NOT_FOUND, **INVALID},
)
async def get_restore_events(
    request: Request, tenant: Caller, restore_id: Annotated[str, Path(max_length=64, pattern=BACKUP_ID)]
) -> EventList:
    """The restore's audit trail: every event in order, with its envelope."""
    rows = await restores.restore_events(_res(request).pool, restore_id, tenant.visible_projects())
    if not rows:
        raise _restore_not_found(restore_id)
    return EventList(backup_id=restore_id, items=[_event_out(r) for r in rows])


@router.get(
    f"{API_PREFIX}/restorable",
    response_model=Restorable,
    tags=["restores"],
    responses={**UNAUTHENTICATED, **FORBIDDEN, **INVALID},
)
async def last_restorable(
    request: Request,
    tenant: Caller,
    project_id: Annotated[str, Query(alias="projectId", max_length=63, pattern=DNS_LABEL)],
    environment: Annotated[str, Query(max_length=63, pattern=DNS_LABEL)],
) -> Restorable:
    """The environment's last backup proven restorable: the newest one a verification restored and found equal
    to what it recorded (``backupId`` null when none has been verified)."""
    require_project(tenant, project_id)
    row = await restores.last_restorable(_res(request).pool, project_id, environment)
    if row is None:
        return Restorable(project_id=project_id, environment=environment, backup_id=None)
    return Restorable(project_id=project_id, environment=environment, **dict(row))


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        Problem(
            field=".".join(str(p) for p in err["loc"]).replace("body", "spec", 1),
            message=str(err["msg"]),
            type=str(err["type"]),
        )
        for err in exc.errors()
    ]
    return JSONResponse(
        status_code=422, content=ErrorOut(detail="invalid request", problems=problems).model_dump(mode="json")
    )


async def _unprocessable(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unprocessable)
    body = ErrorOut(detail="invalid request", problems=exc.problems)
    return JSONResponse(status_code=422, content=body.model_dump(mode="json"))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(status_code=exc.status_code, content={"detail": str(exc.detail)})


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiRefusal)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return JSONResponse(status_code=exc.status, content={"detail": str(exc)}, headers=headers)


OpenResources = Callable[[], AbstractAsyncContextManager[ApiResources]]


def create_app(
    resources: ApiResources | None = None,
    *,
    open_resources: OpenResources | None = None,
    tokens: TokenBook | None = None,
) -> FastAPI:
    """``resources`` are shared with the archiver process; ``open_resources`` lets the app own them. ``tokens``
    are the accepted bearer tokens (none: every ``/api/v1`` call is refused)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if resources is not None:
            app.state.resources = resources
            yield
            return
        assert open_resources is not None, "create_app needs resources or open_resources"
        async with open_resources() as opened:
            app.state.resources = opened
            yield

    app = FastAPI(
        title="LC2 Backup projection API",
        version="1.0.0",
        description="Backups of Liferay environments, projected from the event log. "
        "Every backup's state is a fold over its events; this API serves that projection.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Unprocessable, _unprocessable)
    app.add_exception_handler(ApiRefusal, _refused)
    app.add_exception_handler(HTTPException, _http_error)
    app.state.tokens = tokens if tokens is not None else TokenBook({})
    app.include_router(router)
    return app
