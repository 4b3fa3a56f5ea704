"""The Azure provider: an on-demand and a long-term-retention backup of a PostgreSQL flexible server, Azure's
own server-side blob copy for the document library, metadata.json on Blob Storage.

Only managed APIs are called (no database or object bytes pass through our processes): the flexible server
streams its long-term-retention backup into the backup container through a short-lived SAS, and Blob Storage
copies each blob itself. Credentials come from ``DefaultAzureCredential`` only (workload identity in a cluster).
"""

from lc2backup.providers.azure.blobs import (
    BlobArtifactStore,
    BlobCopyProvider,
    open_artifact_store,
    open_transfer_provider,
)
from lc2backup.providers.azure.flexible import FORMAT, RESTORABLE, FlexibleServerProvider, open_database_provider
from lc2backup.providers.azure.names import ServerRef, backup_name
from lc2backup.providers.azure.settings import AzureSettings

__all__ = [
    "FORMAT",
    "RESTORABLE",
    "AzureSettings",
    "BlobArtifactStore",
    "BlobCopyProvider",
    "FlexibleServerProvider",
    "ServerRef",
    "backup_name",
    "open_artifact_store",
    "open_database_provider",
    "open_transfer_provider",
]
