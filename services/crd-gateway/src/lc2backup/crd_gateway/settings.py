"""crd-gateway settings (``LC2_*``; see the README's configuration table)."""

from __future__ import annotations

from lc2backup.runtime import HealthSettings, ServiceSettings


class Settings(ServiceSettings):
    health: HealthSettings = HealthSettings(port=8081)
    intake_concurrency: int = 32
