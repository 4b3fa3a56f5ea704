"""One place that builds the enabled providers (``LC2_PROVIDERS``) for every service that needs them.

db-export wants database providers, doclib-transfer transfer providers, metadata artefact stores; each asks
here with the settings it has, and gets a mapping from provider name (as a BackupRequest's ``spec.provider``
names it) to a ready provider whose clients live as long as ``stack``. A name this build has no provider for
is left out: the branch that asks for it fails with "provider … is not enabled", naming the setting.
Adding a cloud is adding its row to each of the three builders below.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from lc2backup.providers.aws import AwsSettings, open_artifact_store, open_database_provider, open_transfer_provider
from lc2backup.providers.base import ArtifactStore, DatabaseBackupProvider, DocumentTransferProvider
from lc2backup.providers.deferred import DeferredS3Client
from lc2backup.providers.local import LocalDatabaseProvider, LocalSettings, LocalTransferProvider
from lc2backup.providers.plugins import database_provider, transfer_provider
from lc2backup.providers.s3 import S3Settings
from lc2backup.providers.s3direct import local_artifact_store


async def database_providers(
    enabled: Sequence[str], s3: S3Settings, aws: AwsSettings, local: LocalSettings, stack: contextlib.AsyncExitStack
) -> dict[str, DatabaseBackupProvider]:
    providers: dict[str, DatabaseBackupProvider] = {}
    if "local" in enabled:
        if local.mode != "real":
            providers["local"] = database_provider(local.mode)
        else:  # the S3 client is opened on first use (start-up time, B7)
            providers["local"] = LocalDatabaseProvider(DeferredS3Client(s3, stack), local)
    if "aws" in enabled:
        providers["aws"] = await stack.enter_async_context(open_database_provider(aws))
    return providers


async def transfer_providers(
    enabled: Sequence[str], s3: S3Settings, aws: AwsSettings, local: LocalSettings, stack: contextlib.AsyncExitStack
) -> dict[str, DocumentTransferProvider]:
    providers: dict[str, DocumentTransferProvider] = {}
    if "local" in enabled:
        if local.mode != "real":
            providers["local"] = transfer_provider(local.mode)
        else:
            providers["local"] = LocalTransferProvider(DeferredS3Client(s3, stack), local, s3)
    if "aws" in enabled:
        providers["aws"] = await stack.enter_async_context(open_transfer_provider(aws))
    return providers


async def artifact_stores(
    enabled: Sequence[str], s3: S3Settings, aws: AwsSettings, stack: contextlib.AsyncExitStack
) -> dict[str, ArtifactStore]:
    stores: dict[str, ArtifactStore] = {}
    if "local" in enabled:
        stores["local"] = await stack.enter_async_context(local_artifact_store(s3, stack))
    if "aws" in enabled:
        stores["aws"] = await stack.enter_async_context(open_artifact_store(aws))
    return stores
