"""archiver settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator

from lc2backup.runtime import HealthSettings, ServiceSettings

TOKEN_HASH = re.compile(r"^[0-9a-f]{64}$")
ALL_PROJECTS = "*"
ProjectGrant = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$")]


class PostgresSettings(BaseModel):
    dsn: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/lc2backup")
    min_connections: int = 1
    max_connections: int = 10


class TenantGrant(BaseModel):
    """What one bearer token may do: the tenant it speaks for and the projects it sees (``"*"``: all)."""

    tenant: str = Field(min_length=1, max_length=63)
    projects: list[ProjectGrant] = Field(min_length=1, max_length=1000)


class ApiSettings(BaseModel):
    """The projection API. ``tokens`` maps the SHA-256 (hex) of each bearer token to its grant, so the
    configuration never holds a usable token; ``tokens_file`` is the same JSON object in a file (a mounted
    Secret). Authentication is always on: without a configured token every request but ``/healthz``,
    ``/readyz`` and the OpenAPI document is refused (docs/security.md)."""

    host: str = "127.0.0.1"
    port: int = 8080
    tokens: dict[str, TenantGrant] = Field(default_factory=dict)
    tokens_file: Path | None = None

    @field_validator("tokens")
    @classmethod
    def _hashes(cls, tokens: dict[str, TenantGrant]) -> dict[str, TenantGrant]:
        bad = [key[:12] for key in tokens if not TOKEN_HASH.match(key)]
        if bad:
            raise ValueError(f"token keys must be SHA-256 hex digests of the tokens (got {bad})")
        return tokens


class Settings(ServiceSettings):
    health: HealthSettings = HealthSettings(port=8080)  # served by the API app itself
    postgres: PostgresSettings = PostgresSettings()
    api: ApiSettings = ApiSettings()
    batch_size: int = 1000
