"""``lc2backup-restorer``: Settings() -> service.run(settings)."""

from __future__ import annotations

from lc2backup.restorer import service
from lc2backup.restorer.settings import Settings
from lc2backup.runtime import run


def main() -> None:
    settings = Settings()
    run(lambda stop: service.run(settings, stop))


if __name__ == "__main__":
    main()
