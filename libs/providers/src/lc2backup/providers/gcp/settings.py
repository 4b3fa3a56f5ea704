"""Configuration of the GCP provider (``LC2_GCP__*``), one model shared by db-export, doclib-transfer and metadata.

There is deliberately no credential field: the clients use Application Default Credentials (Workload Identity
in a cluster, ``GOOGLE_APPLICATION_CREDENTIALS`` or the metadata server elsewhere), so no secret ever sits in
our settings, events or logs. Every endpoint can be overridden (the tests' local servers, private endpoints).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class GcpSettings(BaseModel):
    """The project, the three endpoints, the export's options, the retry budget of a call, a restore's polls."""

    project: str | None = Field(
        default=None,
        description="Project of the Storage Transfer jobs and of instances named without one (default: the ADC's)",
    )
    sqladmin_endpoint: str | None = Field(default=None, description="Cloud SQL Admin API root override")
    storage_endpoint: str | None = Field(default=None, description="Cloud Storage JSON API root override")
    storage_transfer_endpoint: str | None = Field(default=None, description="Storage Transfer API root override")
    export_offload: bool = Field(
        default=False, description="Serverless export (Cloud SQL 'offload'): spares the instance, costs extra"
    )
    busy_retries: int = Field(
        default=4,
        ge=0,
        le=20,
        description="How often one call is retried at once when Cloud SQL answers 409 operationInProgress (another"
        " admin operation runs on the instance); after that the step is retried durably, never failed",
    )
    busy_backoff_seconds: float = Field(default=1.0, gt=0, description="First delay of that retry (doubles)")
    http_retries: int = Field(default=3, ge=0, le=10, description="Retries of a call after a 429 or 5xx")
    timeout_seconds: float = Field(default=60.0, gt=0)
    restore_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often a restore polls its Cloud SQL operations and its Storage Transfer operation",
    )
    transient_retry_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Delay before the durable retry after throttling or an outage (default: the service's poll"
        " interval)",
    )
