"""Configuration of the Azure provider (``LC2_AZURE__*``), one model shared by db-export, doclib-transfer and metadata.

There is deliberately no credential field: every client authenticates with ``DefaultAzureCredential`` (workload
identity in a cluster, a managed identity, or the developer's Azure CLI login), so no secret sits in our
settings, events or logs. Every endpoint can be overridden (the tests' local servers, sovereign clouds).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class AzureSettings(BaseModel):
    subscription_id: str | None = Field(
        default=None,
        description="Subscription of servers named as <resourceGroup>/<server> (a full resource id names its own)",
    )
    management_endpoint: str = Field(default="https://management.azure.com", description="Resource Manager root")
    blob_endpoint: str = Field(
        default="https://{account}.blob.core.windows.net",
        description="Blob service of a storage account; {account} is replaced by spec.documentLibrary.storageAccount",
    )
    ca_file: str | None = Field(
        default=None, description="PEM bundle to trust for these endpoints (a private CA; the tests' local servers)"
    )
    sas_hours: float = Field(
        default=6.0,
        gt=0,
        le=24,
        description="Lifetime of the write-only SAS handed to a long-term-retention backup (one container); it must"
        " outlast the backup's upload",
    )
    copy_workers: int = Field(default=32, ge=1, le=256, description="Blob copies started and polled at once")
    copy_poll_seconds: float = Field(default=1.0, gt=0, description="Interval between two looks at pending copies")
    copy_deadline_seconds: float = Field(
        default=3600.0, gt=0, description="A copy still pending this long after it started is aborted: the branch fails"
    )
    progress_interval_seconds: float = Field(default=2.0, gt=0, description="How often a copy records its position")
    restore_poll_seconds: float = Field(
        default=10.0, gt=0, description="Interval between two looks at a server a restore is creating or deleting"
    )
    http_retries: int = Field(
        default=5, ge=0, le=20, description="azure-core retries of a call (429, 503, resets), honouring Retry-After"
    )
    http_backoff_seconds: float = Field(
        default=0.8, ge=0, description="azure-core's backoff factor without Retry-After"
    )
    timeout_seconds: float = Field(default=60.0, gt=0)
    transient_retry_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Delay before the durable retry after throttling or an outage (default: Retry-After, else the"
        " service's poll interval)",
    )
