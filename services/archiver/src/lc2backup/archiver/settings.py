"""archiver settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from lc2backup.runtime import HealthSettings, ServiceSettings


class PostgresSettings(BaseModel):
    dsn: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/lc2backup")
    min_connections: int = 1
    max_connections: int = 10


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080


class Settings(ServiceSettings):
    health: HealthSettings = HealthSettings(port=8080)  # served by the API app itself
    postgres: PostgresSettings = PostgresSettings()
    api: ApiSettings = ApiSettings()
    batch_size: int = 1000
