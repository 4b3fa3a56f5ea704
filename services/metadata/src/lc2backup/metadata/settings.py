"""metadata settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from lc2backup.providers import S3Settings
from lc2backup.providers.aws import AwsSettings
from lc2backup.runtime import HealthSettings, ServiceSettings


class Settings(ServiceSettings):
    health: HealthSettings = HealthSettings(port=8084)
    s3: S3Settings = S3Settings()
    aws: AwsSettings = AwsSettings()
    providers: list[str] = ["local"]
    deadline_hours: float = 12.0  # metadata.json still unwritable this long after both branches: the backup fails
