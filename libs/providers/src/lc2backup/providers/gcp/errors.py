"""Google API errors translated into the providers' tree, each naming the call, the resource and what to fix.

Three client libraries raise three families: the discovery client (Cloud SQL Admin) ``HttpError`` with the
HTTP status and the API's ``errors[].reason``; google-api-core (Storage, Storage Transfer) ``GoogleAPICallError``
subclasses; google-auth ``DefaultCredentialsError``/``RefreshError``; and below them connection errors.
Throttling, 5xx, 409 ``operationInProgress`` and outages are transient (retried durably); what the user has to
change (a name, a permission, a missing resource) is permanent and says so, with the API's own message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lc2backup.providers.errors import (
    PermanentProviderError,
    ProviderError,
    ProviderNotConfigured,
    TransientProviderError,
)

BUSY = "operationInProgress"
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def http_error_parts(exc: Exception) -> tuple[int | None, str, str]:
    """(status, reason, message) of a discovery client ``HttpError`` (reason e.g. ``operationInProgress``)."""
    status = getattr(getattr(exc, "resp", None), "status", None)
    reason, message = "", ""
    try:
        body: Any = json.loads(getattr(exc, "content", b"") or b"{}")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = str(error.get("message", ""))
        errors = error.get("errors") or []
        if errors:
            reason = str(errors[0].get("reason", ""))
        reason = reason or str(error.get("status", ""))
    except (ValueError, AttributeError):
        pass
    return (int(status) if status is not None else None), reason, message


def api_status(exc: Exception) -> str | None:
    """The canonical status of a google-api-core error (``ALREADY_EXISTS``, ``FAILED_PRECONDITION``…). Over REST,
    api-core picks the exception class from the HTTP code alone (409 is ``Conflict`` whether the body says
    ALREADY_EXISTS or ABORTED), so the body's ``error.status`` decides."""
    from google.api_core.exceptions import GoogleAPICallError

    if not isinstance(exc, GoogleAPICallError):
        return None
    response = getattr(exc, "response", None)
    try:
        status = response.json()["error"]["status"] if response is not None else None
    except (ValueError, KeyError, TypeError, AttributeError):
        status = None
    if status:
        return str(status)
    code = exc.grpc_status_code
    return code.name if code is not None else None


def is_busy(exc: Exception) -> bool:
    """Cloud SQL's 409: another admin operation runs on the instance."""
    from googleapiclient.errors import HttpError

    if not isinstance(exc, HttpError):
        return False
    status, reason, _ = http_error_parts(exc)
    return status == 409 and reason in (BUSY, "", "ABORTED")


@dataclass(frozen=True)
class GcpCall:
    """One Google API call as the user has to read it: the permission it needs, the resource, a fix for a
    wrong name."""

    permission: str  # e.g. cloudsql.instances.export
    resource: str  # e.g. "Cloud SQL instance 'p/liferay'"
    fix: str = ""
    retry_after: float | None = None

    def translate(self, exc: Exception) -> ProviderError:
        from google.api_core import exceptions as core
        from google.auth import exceptions as auth
        from googleapiclient.errors import HttpError

        where = f"{self.permission} on {self.resource}"
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, auth.DefaultCredentialsError):
            return ProviderNotConfigured(
                f"{where}: no Google credentials found (Application Default Credentials): use Workload Identity "
                "or set GOOGLE_APPLICATION_CREDENTIALS"
            )
        if isinstance(exc, auth.RefreshError):
            return PermanentProviderError(f"{where}: the Google credentials were refused ({type(exc).__name__})")
        if isinstance(exc, auth.TransportError):
            return TransientProviderError(f"{where}: token endpoint unreachable", self.retry_after)
        if isinstance(exc, HttpError):
            status, reason, message = http_error_parts(exc)
            return self._status(status, reason, message)
        if isinstance(exc, core.GoogleAPICallError):
            code = exc.code
            status = int(code) if isinstance(code, int) else getattr(code, "value", None)
            return self._status(status, type(exc).__name__, str(exc.message))
        if isinstance(exc, (OSError, TimeoutError)) or type(exc).__module__.startswith(("httplib2", "requests")):
            return TransientProviderError(f"{where}: API unreachable ({type(exc).__name__})", self.retry_after)
        return PermanentProviderError(f"{where}: {exc!r}")

    def _status(self, status: int | None, reason: str, message: str) -> ProviderError:
        where = f"{self.permission} on {self.resource}"
        said = f": {message}" if message else ""
        if status in _TRANSIENT_STATUS or (status == 409 and reason == BUSY):
            return TransientProviderError(f"{where}: HTTP {status} {reason}{said} (will retry)", self.retry_after)
        if status == 404:
            fix = f"; {self.fix}" if self.fix else ""
            return PermanentProviderError(f"{self.resource} not found{said}{fix}")
        if status in (401, 403):
            return PermanentProviderError(
                f"access denied to {self.resource} (HTTP {status} {reason}){said}: grant {self.permission} to the "
                "service's Google service account"
            )
        return PermanentProviderError(f"{where}: HTTP {status} {reason}{said}".strip())
