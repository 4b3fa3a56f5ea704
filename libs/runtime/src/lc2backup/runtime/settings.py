"""Settings shared by every service, read from ``LC2_*`` environment variables (nested with ``__``).

Each service subclasses ``ServiceSettings``; ``__main__`` builds it once and passes it down. Secrets are
``SecretStr`` so they never print.
"""

from __future__ import annotations

from typing import Literal

from nats.js.api import StorageType
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lc2backup.eventing import Topology
from lc2backup.eventing.permissions import INBOX_ROOT, inbox_prefix


class NatsSettings(BaseModel):
    url: str = "nats://127.0.0.1:4222"
    user: str | None = None
    password: SecretStr | None = None
    creds_file: str | None = None
    connect_timeout: float = 2.0
    # Replies arrive below this prefix; its NATS user may subscribe only there (lc2backup.eventing.permissions).
    # Default: ``_INBOX.<user>`` when a user is set, else ``_INBOX``.
    inbox_prefix: str | None = None

    def inbox(self) -> str:
        if self.inbox_prefix:
            return self.inbox_prefix
        return inbox_prefix(self.user) if self.user else INBOX_ROOT


class StreamSettings(BaseModel):
    """Durability of the streams the services create at start-up (production: file, 3 replicas)."""

    storage: Literal["file", "memory"] = "file"
    replicas: int = 1
    deny_delete: bool = True
    deny_purge: bool = True
    duplicate_window_seconds: float = 120.0
    # Bring existing streams to these settings at start-up (the one stream manager); false: only create missing ones.
    manage: bool = True

    def topology(self) -> Topology:
        return Topology(
            storage=StorageType.FILE if self.storage == "file" else StorageType.MEMORY,
            replicas=self.replicas,
            deny_delete=self.deny_delete,
            deny_purge=self.deny_purge,
            duplicate_window=self.duplicate_window_seconds,
        )


class HealthSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8081


class ConsumerSettings(BaseModel):
    ack_wait_seconds: float = 30.0
    concurrency: int = 16
    max_error_attempts: int = 10
    grace_seconds: float = 20.0


class StateCacheSettings(BaseModel):
    """Folds kept between deliveries (lc2backup.eventing.caching): at most this many backups; 0 disables."""

    max_backups: int = Field(default=1024, ge=0)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LC2_", env_nested_delimiter="__", extra="ignore")

    nats: NatsSettings = NatsSettings()
    streams: StreamSettings = StreamSettings()
    health: HealthSettings = HealthSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    state_cache: StateCacheSettings = StateCacheSettings()
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    trace_console: bool = False
