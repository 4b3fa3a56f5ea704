"""One place that builds the enabled providers (``LC2_PROVIDERS``) for every service that needs them.

db-export wants database providers, doclib-transfer transfer providers, metadata artefact stores; each asks
here with its ``ProviderSettings`` (every service's settings include them) and gets a mapping from provider
name (as a BackupRequest's ``spec.provider`` names it) to a ready provider whose clients live as long as
``stack``. A name this build has no provider for is left out: the branch that asks for it fails with
"provider … is not enabled", naming the setting. Adding a cloud is adding its row to each builder below.
"""

from __future__ import annotations

import contextlib

from pydantic import BaseModel

from lc2backup.providers import aws, azure, gcp
from lc2backup.providers.aws import AwsSettings
from lc2backup.providers.azure import AzureSettings
from lc2backup.providers.base import ArtifactStore, DatabaseBackupProvider, DocumentTransferProvider
from lc2backup.providers.deferred import DeferredS3Client
from lc2backup.providers.gcp import GcpSettings
from lc2backup.providers.local import LocalDatabaseProvider, LocalSettings, LocalTransferProvider
from lc2backup.providers.local.restoring import LocalRestorer
from lc2backup.providers.plugins import database_provider, transfer_provider
from lc2backup.providers.restoring import RestoreProvider
from lc2backup.providers.s3 import S3Settings
from lc2backup.providers.s3direct import local_artifact_store


class ProviderSettings(BaseModel):
    """``LC2_PROVIDERS`` and each provider's own settings (``LC2_S3__*``, ``LC2_AWS__*``, ``LC2_GCP__*``,
    ``LC2_AZURE__*``, ``LC2_LOCAL__*``): part of the settings of every service that builds providers."""

    providers: list[str] = ["local"]
    s3: S3Settings = S3Settings()
    aws: AwsSettings = AwsSettings()
    gcp: GcpSettings = GcpSettings()
    azure: AzureSettings = AzureSettings()
    local: LocalSettings = LocalSettings()


async def database_providers(
    settings: ProviderSettings, stack: contextlib.AsyncExitStack
) -> dict[str, DatabaseBackupProvider]:
    enabled, local = settings.providers, settings.local
    providers: dict[str, DatabaseBackupProvider] = {}
    if "local" in enabled:
        if local.mode != "real":
            providers["local"] = database_provider(local.mode)
        else:  # the S3 client is opened on first use (start-up time, B7)
            providers["local"] = LocalDatabaseProvider(DeferredS3Client(settings.s3, stack), local)
    if "aws" in enabled:
        providers["aws"] = await stack.enter_async_context(aws.open_database_provider(settings.aws))
    if "gcp" in enabled:
        providers["gcp"] = await stack.enter_async_context(gcp.open_database_provider(settings.gcp))
    if "azure" in enabled:
        providers["azure"] = await stack.enter_async_context(azure.open_database_provider(settings.azure))
    return providers


async def transfer_providers(
    settings: ProviderSettings, stack: contextlib.AsyncExitStack
) -> dict[str, DocumentTransferProvider]:
    enabled, local = settings.providers, settings.local
    providers: dict[str, DocumentTransferProvider] = {}
    if "local" in enabled:
        if local.mode != "real":
            providers["local"] = transfer_provider(local.mode)
        else:
            providers["local"] = LocalTransferProvider(DeferredS3Client(settings.s3, stack), local, settings.s3)
    if "aws" in enabled:
        providers["aws"] = await stack.enter_async_context(aws.open_transfer_provider(settings.aws))
    if "gcp" in enabled:
        providers["gcp"] = await stack.enter_async_context(gcp.open_transfer_provider(settings.gcp))
    if "azure" in enabled:
        providers["azure"] = await stack.enter_async_context(azure.open_transfer_provider(settings.azure))
    return providers


async def artifact_stores(settings: ProviderSettings, stack: contextlib.AsyncExitStack) -> dict[str, ArtifactStore]:
    enabled = settings.providers
    stores: dict[str, ArtifactStore] = {}
    if "local" in enabled:
        stores["local"] = await stack.enter_async_context(local_artifact_store(settings.s3, stack))
    if "aws" in enabled:
        stores["aws"] = await stack.enter_async_context(aws.open_artifact_store(settings.aws))
    if "gcp" in enabled:
        stores["gcp"] = await stack.enter_async_context(gcp.open_artifact_store(settings.gcp))
    if "azure" in enabled:
        stores["azure"] = await stack.enter_async_context(azure.open_artifact_store(settings.azure))
    return stores


async def restore_providers(settings: ProviderSettings, stack: contextlib.AsyncExitStack) -> dict[str, RestoreProvider]:
    """The providers that can restore here; a backup of another provider is rejected at intake, naming the ones
    that can."""
    local = settings.local
    providers: dict[str, RestoreProvider] = {}
    if "local" in settings.providers and local.mode == "real":
        databases = {name: dsn.get_secret_value() for name, dsn in local.databases.items()}
        providers["local"] = LocalRestorer(
            DeferredS3Client(settings.s3, stack),
            databases,
            pg_restore=local.pg_restore,
            copy_workers=min(local.copy_workers, 32),
            progress_interval=local.progress_interval_seconds,
        )
    if "aws" in settings.providers:
        providers["aws"] = await stack.enter_async_context(aws.open_restore_provider(settings.aws))
    if "gcp" in settings.providers:
        providers["gcp"] = await stack.enter_async_context(gcp.open_restore_provider(settings.gcp))
    if "azure" in settings.providers:
        providers["azure"] = await stack.enter_async_context(azure.open_restore_provider(settings.azure))
    return providers
