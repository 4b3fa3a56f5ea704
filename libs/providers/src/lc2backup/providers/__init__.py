"""Provider interfaces (database snapshot/export, document-library transfer, artefact store) and the
implementations, one subpackage per cloud. No SDK type crosses these interfaces.
"""

from lc2backup.providers.base import (
    COPIER_COUNTERS,
    ArtifactStore,
    BackupJob,
    BranchCheck,
    Capabilities,
    DatabaseBackupProvider,
    DocumentTransferProvider,
    ExportProgress,
    ExportStatus,
    PutOnceResult,
    SnapshotStatus,
    TransferProgress,
    TransferStatus,
)
from lc2backup.providers.branches import BranchRunner
from lc2backup.providers.deferred import DeferredS3Client
from lc2backup.providers.errors import (
    ObjectNotFound,
    OperationAborted,
    PermanentProviderError,
    ProviderError,
    ProviderNotConfigured,
    SourceChanged,
    TransientProviderError,
)
from lc2backup.providers.s3 import S3Settings, s3_client

__all__ = [
    "COPIER_COUNTERS",
    "ArtifactStore",
    "BackupJob",
    "BranchCheck",
    "BranchRunner",
    "Capabilities",
    "DatabaseBackupProvider",
    "DeferredS3Client",
    "DocumentTransferProvider",
    "ExportProgress",
    "ExportStatus",
    "ObjectNotFound",
    "OperationAborted",
    "PermanentProviderError",
    "ProviderError",
    "ProviderNotConfigured",
    "PutOnceResult",
    "S3Settings",
    "SnapshotStatus",
    "SourceChanged",
    "TransferProgress",
    "TransferStatus",
    "TransientProviderError",
    "s3_client",
]
