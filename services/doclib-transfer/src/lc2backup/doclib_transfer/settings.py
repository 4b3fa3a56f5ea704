"""doclib-transfer settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from pydantic import Field

from lc2backup.providers.factory import ProviderSettings
from lc2backup.runtime import HealthSettings, ServiceSettings


class Settings(ServiceSettings, ProviderSettings):
    health: HealthSettings = HealthSettings(port=8083)
    poll_interval_seconds: float = 15.0
    deadline_hours: float = 24.0
    max_concurrent_copies: int = 2
    copy_slice_seconds: float = Field(
        default=30.0,
        gt=0,
        description="our copier works at most about this long per delivery, records its position and goes on in"
        " the next delivery (a crash then redoes at most the objects copied since the last position)",
    )
