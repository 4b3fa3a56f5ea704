"""metadata settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from lc2backup.providers.factory import ProviderSettings
from lc2backup.runtime import HealthSettings, ServiceSettings


class Settings(ServiceSettings, ProviderSettings):
    health: HealthSettings = HealthSettings(port=8084)
    deadline_hours: float = 12.0  # metadata.json still unwritable this long after both branches: the backup fails
