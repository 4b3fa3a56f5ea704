"""``lc2backup-doclib-transfer``: Settings() -> service.run(settings)."""

from __future__ import annotations

from lc2backup.doclib_transfer import service
from lc2backup.doclib_transfer.settings import Settings
from lc2backup.runtime import run


def main() -> None:
    settings = Settings()
    run(lambda stop: service.run(settings, stop))


if __name__ == "__main__":
    main()
