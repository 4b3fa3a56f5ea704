"""restorer settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from lc2backup.providers.factory import ProviderSettings
from lc2backup.runtime import HealthSettings, ServiceSettings


class Settings(ServiceSettings, ProviderSettings):
    health: HealthSettings = HealthSettings(port=8085)
    poll_interval_seconds: float = 5.0  # how often a running restore's delivery comes back to check on it
    lease_seconds: float = 30.0  # a restore's lease: renewed every third of it; a killed holder's runs out after it
    max_concurrent_restores: int = 2
    deadline_hours: float = 24.0  # counted from the request: then the restore fails, saying so
