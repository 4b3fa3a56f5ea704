"""Configuration of the AWS provider (``LC2_AWS__*``), one model shared by db-export, doclib-transfer and metadata.

There is deliberately no credential field: the clients use botocore's standard chain (environment, shared
profile, IRSA web identity, container/instance roles), so no secret ever sits in our settings, events or logs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from lc2backup.providers.s3 import MIB, SINGLE_COPY_LIMIT, S3Settings


class AwsSettings(BaseModel):
    """Region, endpoints, retries, the RDS export's role and key, and the copy's limits."""

    region: str = "us-east-1"
    rds_endpoint_url: str | None = Field(default=None, description="RDS endpoint override (moto, VPC endpoint)")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint override (moto, S3-compatible)")
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(
        default=4, ge=0, le=20, description="botocore's max_attempts: retries of one call after its first attempt"
    )
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_pool_connections: int = Field(default=64, ge=1)
    transient_retry_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Delay before the durable retry of an RDS call after throttling or an outage "
        "(default: the service's poll interval)",
    )
    export_iam_role_arn: str | None = Field(default=None, description="Role RDS assumes to write the export")
    export_kms_key_id: str | None = Field(default=None, description="KMS key RDS encrypts the export with")
    restore_poll_interval_seconds: float = Field(
        default=30.0, gt=0, description="how often the restorer describes an instance or cluster being restored"
    )
    restore_instance_class: str | None = Field(
        default=None,
        description="DB instance class of a restored instance (default: the snapshot's source class; for an Aurora"
        " cluster's instance, db.r6g.large)",
    )
    restore_db_subnet_group_name: str | None = Field(
        default=None, description="DB subnet group of a restored instance or cluster (default: RDS's, the default VPC)"
    )
    restore_vpc_security_group_ids: list[str] = Field(
        default_factory=list, description="VPC security groups of a restored instance or cluster (default: RDS's)"
    )
    copy_workers: int = Field(default=64, ge=1, le=512)
    progress_interval_seconds: float = Field(default=5.0, gt=0)
    cancel_check_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often a running copy checks that its branch was not cancelled"
    )
    direct_copy: bool = Field(
        default=True,
        description="list and CopyObject over aiohttp, signed by botocore's SigV4 with the standard credential"
        " chain (s3direct), instead of botocore's client",
    )
    single_copy_limit_bytes: int = Field(default=SINGLE_COPY_LIMIT, ge=5 * MIB, le=SINGLE_COPY_LIMIT)
    multipart_part_size_bytes: int = Field(default=512 * MIB, ge=5 * MIB, le=SINGLE_COPY_LIMIT)

    def s3(self) -> S3Settings:
        """The shared S3 client settings for this account (no keys: the standard chain supplies them)."""
        return S3Settings(
            endpoint_url=self.s3_endpoint_url,
            region=self.region,
            max_pool_connections=max(self.max_pool_connections, self.copy_workers),
            retry_mode=self.retry_mode,
            max_attempts=self.max_attempts,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )
