"""The GCP provider: a Cloud SQL backup run and SQL export to GCS, Storage Transfer for the document library,
metadata.json on GCS.

Only managed APIs are called (no database or object bytes pass through our processes): Cloud SQL writes its
dump straight into GCS and the Storage Transfer Service copies the bucket. Credentials come from Application
Default Credentials only (Workload Identity in a cluster). The SQL export restores anywhere (``GcpRestorer``:
``instances.import`` into a new database, the document library copied back by Storage Transfer); the backup run
restores onto an instance while it lives.
"""

from lc2backup.providers.gcp.cloudsql import FORMAT, RESTORABLE, CloudSqlDatabaseProvider, open_database_provider
from lc2backup.providers.gcp.names import InstanceRef, description_of, restore_job_name, transfer_job_name
from lc2backup.providers.gcp.restoring import GcpRestorer, open_restore_provider
from lc2backup.providers.gcp.settings import GcpSettings
from lc2backup.providers.gcp.storage import open_artifact_store
from lc2backup.providers.gcp.transfer import StorageTransferProvider, open_transfer_provider

__all__ = [
    "FORMAT",
    "RESTORABLE",
    "CloudSqlDatabaseProvider",
    "GcpRestorer",
    "GcpSettings",
    "InstanceRef",
    "StorageTransferProvider",
    "description_of",
    "open_artifact_store",
    "open_database_provider",
    "open_restore_provider",
    "open_transfer_provider",
    "restore_job_name",
    "transfer_job_name",
]
