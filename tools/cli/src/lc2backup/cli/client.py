"""A small synchronous client of the projection API, translating HTTP failures into ``CliError``s once.

Synchronous on purpose: every command makes a handful of requests in sequence, and ``watch`` polls.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from lc2backup.cli.errors import ApiError, InvalidInput, NotFound, Unreachable
from lc2backup.cli.locating import api_token
from lc2backup.domain import Problem

API_PREFIX = "/api/v1"


class ProjectionApi:
    """``token``: the bearer token; by default ``LC2_API_TOKEN``, else the running local stack's own."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        token = token or api_token(self.base_url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def __enter__(self) -> ProjectionApi:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(
                f"cannot reach the projection API at {self.base_url}: {exc or type(exc).__name__}",
                hint="is the stack running? `make status` shows it; `make up` starts it",
            ) from exc

    def _json(self, resp: httpx.Response, what: str) -> Any:
        if resp.status_code == 404:
            raise NotFound(f"{what} not found", status=404)
        if resp.status_code == 422:
            body = _body(resp)
            problems = [Problem.model_validate(p) for p in body.get("problems") or []]
            raise InvalidInput(f"the API refused the request: {body.get('detail', 'invalid request')}", problems)
        if resp.status_code >= 400:
            detail = _body(resp).get("detail") or resp.text[:500]
            where = f"{resp.request.method} {resp.request.url.path}"
            hint = "set LC2_API_TOKEN to a token the API accepts" if resp.status_code == 401 else None
            raise ApiError(f"{where} answered {resp.status_code}: {detail}", status=resp.status_code, hint=hint)
        return resp.json()

    def list_page(
        self,
        *,
        project_id: str | None = None,
        environment: str | None = None,
        state: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        params = {"projectId": project_id, "environment": environment, "state": state, "limit": limit, "cursor": cursor}
        query = {k: v for k, v in params.items() if v is not None}
        page: dict[str, Any] = self._json(self._send("GET", f"{API_PREFIX}/backups", params=query), "backups")
        return page

    def list_all(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every backup matching ``filters``, following ``nextCursor`` page after page."""
        cursor: str | None = None
        while True:
            page = self.list_page(cursor=cursor, **filters)
            yield from page["items"]
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def get(self, backup_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._json(self._send("GET", f"{API_PREFIX}/backups/{backup_id}"), f"backup {backup_id}")
        return doc

    def find(self, backup_id: str) -> dict[str, Any] | None:
        try:
            return self.get(backup_id)
        except NotFound:
            return None

    def events(self, backup_id: str) -> list[dict[str, Any]]:
        body = self._json(self._send("GET", f"{API_PREFIX}/backups/{backup_id}/events"), f"backup {backup_id}")
        items: list[dict[str, Any]] = body["items"]
        return items

    def request_backup(self, spec: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        resp = self._send("POST", f"{API_PREFIX}/backups", json=spec, headers=headers)
        accepted: dict[str, Any] = self._json(resp, "the backups endpoint")
        return accepted

    def request_restore(self, spec: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        """POST a RestoreRequest spec; ``{"restoreId", "status", "location"}``. A 404 names the backup."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        resp = self._send("POST", f"{API_PREFIX}/restores", json=spec, headers=headers)
        accepted: dict[str, Any] = self._json(resp, f"backup {spec.get('backupId')}")
        return accepted

    def verify(self, backup_id: str, idempotency_key: str | None, keep_failed_hours: int = 24) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        params = {"keepFailedHours": keep_failed_hours}
        resp = self._send("POST", f"{API_PREFIX}/backups/{backup_id}/verify", headers=headers, params=params)
        accepted: dict[str, Any] = self._json(resp, f"backup {backup_id}")
        return accepted

    def restores(self, *, backup_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"limit": limit} | ({"backupId": backup_id} if backup_id else {})
        body = self._json(self._send("GET", f"{API_PREFIX}/restores", params=query), "restores")
        items: list[dict[str, Any]] = body["items"]
        return items

    def get_restore(self, restore_id: str) -> dict[str, Any]:
        resp = self._send("GET", f"{API_PREFIX}/restores/{restore_id}")
        doc: dict[str, Any] = self._json(resp, f"restore {restore_id}")
        return doc

    def find_restore(self, restore_id: str) -> dict[str, Any] | None:
        try:
            return self.get_restore(restore_id)
        except NotFound:
            return None

    def restorable(self, project_id: str, environment: str) -> dict[str, Any]:
        query = {"projectId": project_id, "environment": environment}
        doc: dict[str, Any] = self._json(self._send("GET", f"{API_PREFIX}/restorable", params=query), "restorable")
        return doc

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False


def _body(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
