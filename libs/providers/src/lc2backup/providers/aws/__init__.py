"""The AWS provider: RDS/Aurora snapshot + Parquet export to S3, S3 server-side copy, metadata.json on S3.

Only managed APIs are called (no database or object bytes pass through our processes). Credentials come
from the standard AWS chain only. The snapshot is the restorable artefact (restored into a new instance by
``AwsRestorer``); the export is for analytics.
"""

from lc2backup.providers.aws.clients import rds_client
from lc2backup.providers.aws.database import AwsDatabaseProvider, open_database_provider
from lc2backup.providers.aws.exporting import FORMAT, RESTORABLE
from lc2backup.providers.aws.identifiers import export_identifier, snapshot_identifier
from lc2backup.providers.aws.restoring import AwsRestorer, open_restore_provider
from lc2backup.providers.aws.settings import AwsSettings
from lc2backup.providers.aws.transfer import AwsTransferProvider, open_artifact_store, open_transfer_provider

__all__ = [
    "FORMAT",
    "RESTORABLE",
    "AwsDatabaseProvider",
    "AwsRestorer",
    "AwsSettings",
    "AwsTransferProvider",
    "export_identifier",
    "open_artifact_store",
    "open_database_provider",
    "open_restore_provider",
    "open_transfer_provider",
    "rds_client",
    "snapshot_identifier",
]
