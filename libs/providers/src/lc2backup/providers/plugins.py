"""Providers that other installed packages register under a name, found at start-up (Python entry points).

``LC2_LOCAL__MODE`` says how the local provider does its work: ``real`` is built in; any other name is
looked up in ``DATABASE_PROVIDERS`` (db-export) and ``TRANSFER_PROVIDERS`` (doclib-transfer). The test-only
package ``lc2backup-testing`` registers ``instant`` (operations complete at once and move nothing: for
benchmarks and flood tests), so the image, which installs only the six services, cannot run in that mode
by mistake: the service stops at start-up saying which mode is missing.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from lc2backup.providers.base import DatabaseBackupProvider, DocumentTransferProvider
from lc2backup.providers.errors import ProviderNotConfigured

DATABASE_PROVIDERS = "lc2backup.providers.database"
TRANSFER_PROVIDERS = "lc2backup.providers.transfer"


def _load(group: str, name: str) -> Any:
    found = entry_points(group=group, name=name)
    if not found:
        available = sorted(ep.name for ep in entry_points(group=group))
        raise ProviderNotConfigured(
            f"LC2_LOCAL__MODE={name}: no installed package provides it (entry point group {group};"
            f" installed: {', '.join(available) or 'none'}). 'instant' comes with the test-only package"
            " lc2backup-testing, which the image does not install"
        )
    (entry,) = tuple(found)
    return entry.load()()


def database_provider(name: str) -> DatabaseBackupProvider:
    """The database provider a plugin registered as ``name``."""
    provider: DatabaseBackupProvider = _load(DATABASE_PROVIDERS, name)
    return provider


def transfer_provider(name: str) -> DocumentTransferProvider:
    """The document-transfer provider a plugin registered as ``name``."""
    provider: DocumentTransferProvider = _load(TRANSFER_PROVIDERS, name)
    return provider
