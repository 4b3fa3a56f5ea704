"""The providers' error tree; SDK exceptions are translated at each provider's boundary, cause chained.

ProviderError
 ├── TransientProviderError    throttling, 5xx, timeouts, connection resets: retry later (durably)
 ├── PermanentProviderError    access denied, missing bucket/instance, invalid request: fail the branch
 │    ├── ProviderNotConfigured   the request names a provider this deployment has no credentials for
 │    ├── ObjectNotFound          the object named does not exist (to a copier: it vanished from the source)
 │    └── SourceChanged           a precondition on the source failed: it changed since it was listed
 └── OperationAborted          the backup ended (failed elsewhere) while this operation ran
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every error raised by lc2backup.providers."""


class TransientProviderError(ProviderError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """The operation cannot succeed as requested; the message names the resource and what to fix."""


class ProviderNotConfigured(PermanentProviderError):
    pass


class ObjectNotFound(PermanentProviderError):
    """The object named does not exist (S3 ``NoSuchKey``/404; a missing bucket stays a plain permanent error)."""


class SourceChanged(PermanentProviderError):
    """A conditional request on a source failed (S3 ``PreconditionFailed``/412): it changed since it was read."""


class OperationAborted(ProviderError):
    """Raised from a progress callback to stop work whose backup is already over."""
