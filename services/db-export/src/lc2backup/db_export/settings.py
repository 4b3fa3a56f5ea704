"""db-export settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from lc2backup.providers.factory import ProviderSettings
from lc2backup.runtime import HealthSettings, ServiceSettings


class Settings(ServiceSettings, ProviderSettings):
    health: HealthSettings = HealthSettings(port=8082)
    poll_interval_seconds: float = 15.0
    deadline_hours: float = 12.0
    max_concurrent_dumps: int = 2
    lease_seconds: float = 30.0  # a dump's lease: renewed every third of it; a killed holder's runs out after it
