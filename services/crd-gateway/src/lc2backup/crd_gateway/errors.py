"""crd-gateway errors: Kubernetes API failures, translated once in ``kube.py`` with the cause chained.

GatewayError
 ├── LaneContention           a project+environment lane kept changing under compare-and-set (retried later)
 ├── CommandNotPublished      NATS did not take a RestoreRequest's restore command (retried with backoff)
 └── KubernetesError          the API server refused or failed a call (``status`` is the HTTP code, 0 if none)
      ├── KubernetesUnavailable  no answer, a timeout, 429 or 5xx: retry with backoff
      ├── ResourceGone           410: the watch's resourceVersion is too old: re-list
      ├── ResourceNotFound       404: the CR is gone
      └── ResourceConflict       409: a stale resourceVersion, or the object already exists

Unreadable NATS commands are ``PoisonMessage`` from lc2backup.eventing; invalid requests are events.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of crd-gateway's own errors."""


class LaneContention(GatewayError):
    """The lane's compare-and-set lost too many times in a row; the message is redelivered."""


class CommandNotPublished(GatewayError):
    """NATS did not take a command crd-gateway publishes (a RestoreRequest's restore command): retried."""


class KubernetesError(GatewayError):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class KubernetesUnavailable(KubernetesError):
    """Transient: the API server did not answer, timed out, throttled us or failed (5xx)."""


class ResourceGone(KubernetesError):
    """The resourceVersion a watch resumed from is older than the server's history."""


class ResourceNotFound(KubernetesError):
    """The object (or its namespace) does not exist."""


class ResourceConflict(KubernetesError):
    """Optimistic concurrency lost (stale resourceVersion) or a create found the name taken."""
