"""The Azure provider: an on-demand backup and a portable copy (PostgreSQL: long-term-retention backup; MySQL:
backup-and-export) of a flexible server, Azure's own server-side blob copy for the document library, metadata.json on Blob Storage;
restores as a point-in-time restore of the server into a new one and the blobs copied back.

Only managed APIs are called (no database or object bytes pass through our processes): the flexible server
streams its portable copy into the backup container through a short-lived SAS, and Blob Storage
copies each blob itself. Credentials come from ``DefaultAzureCredential`` only (workload identity in a cluster).
"""

from lc2backup.providers.azure.blobs import (
    BlobArtifactStore,
    BlobCopyProvider,
    open_artifact_store,
    open_transfer_provider,
)
from lc2backup.providers.azure.flexible import FORMATS, RESTORABLE, FlexibleServerProvider, open_database_provider
from lc2backup.providers.azure.names import BackupRef, ServerRef, backup_name
from lc2backup.providers.azure.restoring import AzureRestorer, open_restore_provider
from lc2backup.providers.azure.settings import AzureSettings

__all__ = [
    "FORMATS",
    "RESTORABLE",
    "AzureRestorer",
    "AzureSettings",
    "BackupRef",
    "BlobArtifactStore",
    "BlobCopyProvider",
    "FlexibleServerProvider",
    "ServerRef",
    "backup_name",
    "open_artifact_store",
    "open_database_provider",
    "open_restore_provider",
    "open_transfer_provider",
]
