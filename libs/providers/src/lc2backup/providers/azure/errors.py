"""azure-core's exceptions, translated once into the providers' error tree, naming the resource and the fix.

azure-core's retry policy has already retried 408/429/5xx and connection failures (honouring ``Retry-After``)
when one reaches us: what is still throttled or unavailable is retried durably (transient); 404, 403, 400 and
the like fail the branch with Azure's own code and message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lc2backup.providers.errors import (
    ObjectNotFound,
    PermanentProviderError,
    ProviderError,
    SourceChanged,
    TransientProviderError,
)

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
ENDED = frozenset({"succeeded", "failed", "canceled", "cancelled"})  # a long-running operation's last statuses
T = TypeVar("T")


def error_code(exc: BaseException) -> str | None:
    """Azure's error code (``x-ms-error-code`` / the ARM body's ``error.code``) of an HttpResponseError."""
    code = getattr(exc, "error_code", None)
    if code:
        return str(code)
    error_code_of_body = getattr(getattr(exc, "error", None), "code", None)
    return str(error_code_of_body) if error_code_of_body else None


def _message(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    text = str(getattr(error, "message", None) or getattr(exc, "reason", None) or exc)
    return text.splitlines()[0][:500]


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class AzureCall:
    """What one call does: the role it needs (``grant``), the resource it names and how to fix a wrong name."""

    grant: str
    resource: str
    fix: str = ""
    retry_seconds: float | None = None

    def translate(self, exc: BaseException) -> ProviderError:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, ServiceRequestError | ServiceResponseError | TimeoutError | ConnectionError | OSError):
            return TransientProviderError(f"{self.resource}: Azure unreachable ({exc}): will retry", self.retry_seconds)
        status = getattr(exc, "status_code", None)
        code, message = error_code(exc), _message(exc)
        said = f"{code}: {message}" if code and code not in message else message
        if isinstance(exc, ClientAuthenticationError) and status in (None, 401):
            return PermanentProviderError(
                f"{self.resource}: Azure refused our credentials ({said}): check the service's workload identity"
                " (DefaultAzureCredential)"
            )
        if status in TRANSIENT_STATUS or code in ("ServerBusy", "TooManyRequests", "OperationTimedOut"):
            return TransientProviderError(
                f"{self.resource}: Azure answered {status} ({said}): will retry",
                self.retry_seconds or _retry_after(exc),
            )
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            if code == "BlobNotFound":
                return ObjectNotFound(f"{self.resource} does not exist ({said})")
            return PermanentProviderError(
                f"{self.resource} does not exist ({said})" + (f": {self.fix}" if self.fix else "")
            )
        if status == 403:
            return PermanentProviderError(f"access denied to {self.resource} ({said}): grant the service {self.grant}")
        if status == 412 or code in ("ConditionNotMet", "SourceConditionNotMet"):
            return SourceChanged(f"{self.resource} changed ({said})")
        if isinstance(exc, HttpResponseError):
            return PermanentProviderError(f"{self.resource}: Azure refused the request, {status} {said}")
        return PermanentProviderError(f"{self.resource}: {type(exc).__name__}: {exc}")

    async def run(self, action: Callable[[], Awaitable[T]]) -> T:
        """``action``'s answer, its failure translated."""
        try:
            return await action()
        except Exception as exc:
            raise self.translate(exc) from exc

    async def find(self, action: Callable[[], Awaitable[T]]) -> T | None:
        """``action``'s answer, or None when Azure says it does not exist (404)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await action()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise self.translate(exc) from exc

    async def look(self, poller_of: Callable[[], Awaitable[Any]]) -> tuple[str, Any]:
        """One look at a long-running operation (the poller ``poller_of`` gives, new or rebuilt from its continuation
        token): ("running", None), ("failed", Azure's reason) or ("succeeded", the operation's result)."""
        from azure.core.exceptions import HttpResponseError

        poller = await self.run(poller_of)
        method = poller.polling_method()
        await self.run(method.update_status)
        status = str(method.status()).lower()
        if status not in ENDED:
            return "running", None
        try:
            result = await poller.result()
        except HttpResponseError as exc:
            error = getattr(exc, "error", None)
            code, message = getattr(error, "code", None), getattr(error, "message", None) or str(exc).splitlines()[0]
            return "failed", f"{code}: {message}" if code else str(message)
        if status == "succeeded":
            return "succeeded", result
        return "failed", f"the operation ended {method.status()}"
