"""crd-gateway settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from lc2backup.runtime import HealthSettings, ServiceSettings


class KubernetesSettings(BaseModel):
    """The BackupRequest side. Off unless configured, so the NATS intake runs without a cluster.

    Credentials: ``kubeconfig`` (a file, with an optional ``context``), else the pod's service account when
    running in a cluster (``KUBERNETES_SERVICE_HOST`` is set), else ``$KUBECONFIG`` / ``~/.kube/config``.
    """

    enabled: bool = False
    namespaces: list[str] = Field(default_factory=list, description="Namespaces to watch; empty: all of them")
    kubeconfig: str | None = None
    context: str | None = None
    watch_timeout_seconds: int = Field(default=300, ge=1, description="Server-side end of each watch request")
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    status_concurrency: int = Field(default=8, ge=1)
    events: bool = Field(default=True, description="Record Kubernetes Events on major transitions")
    status_retry_seconds: float = Field(default=2.0, gt=0, description="nak delay while the API is unavailable")


class Settings(ServiceSettings):
    health: HealthSettings = HealthSettings(port=8081)
    intake_concurrency: int = 32
    admission_concurrency: int = Field(
        default=32, ge=1, description="admission events handled at once (different lanes; one lane stays in order)"
    )
    kubernetes: KubernetesSettings = KubernetesSettings()
