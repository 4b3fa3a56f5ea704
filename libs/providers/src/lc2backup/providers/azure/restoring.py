"""The Azure provider's restore: the backup's flexible server restored by Azure into a NEW server at the point its
on-demand backup completed (``lc2backup.providers.azure.servers``), and the document library copied back by Blob
Storage itself (``lc2backup.providers.azure.library``). No database or object byte passes through our process.

Every call is idempotent under the restore id: the new server is found by name and its ``lc2-restore-id`` tag and
followed, never created twice; blobs already restored equal are not copied again. A verification reads the new
server back from Resource Manager (Ready, made by this restore from the backup's server and point in time) and the
restored blobs against the manifest; the databases' contents are not compared (a managed restore has no figures
taken at backup time). Its scratch server is deleted, its blobs removed; the verdict is a blob next to the backup.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.metadata import MetadataDocument
from lc2backup.domain.restoring import DatabasePlan, DocumentLibraryPlan, RestorePlan
from lc2backup.providers.azure.clients import AzureClients
from lc2backup.providers.azure.library import BlobLibrary
from lc2backup.providers.azure.servers import ServerRestore
from lc2backup.providers.azure.settings import AzureSettings
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.restore_checks import ArtefactCheck
from lc2backup.providers.restoring import LibraryRestored, Progress, Verdict


class AzureRestorer:
    name = "azure"
    restores = frozenset({"snapshot"})  # a new server restored from the on-demand backup, by Azure

    def __init__(self, clients: AzureClients, settings: AzureSettings) -> None:
        self._servers = ServerRestore(clients, settings)
        self._library = BlobLibrary(clients, settings)

    async def validate(self, restore_id: str, plan: RestorePlan) -> tuple[list[str], list[str]]:
        problems: list[str] = []
        checks: list[str] = []
        if plan.metadata_location:
            await _checked(self._library.check_metadata(plan, _lists_the_backup(plan), checks), problems)
        if plan.database is not None:
            await _checked(self._servers.check(restore_id, plan.database, checks), problems)
        if plan.document_library is not None:
            await _checked(self._library.check_target(plan.document_library, checks), problems)
        return problems, checks

    async def restore_database(self, restore_id: str, plan: DatabasePlan, progress: Progress) -> int:
        await self._servers.restore(restore_id, plan)
        return 0  # Azure restored it: no byte passed through us

    async def restore_document_library(
        self, restore_id: str, plan: DocumentLibraryPlan, progress: Progress
    ) -> LibraryRestored:
        return await self._library.restore(plan, progress)

    async def verify(self, restore_id: str, plan: RestorePlan) -> Verdict:
        findings: list[str] = []
        checks: list[str] = []
        summary = VerificationSummary()
        if plan.database is not None:
            await self._servers.verify(restore_id, plan.database, findings, checks)
        if plan.document_library is not None:
            summary = await self._library.verify(plan.document_library, summary, findings, checks)
        return Verdict(summary, findings, checks)

    async def write_verdict(self, restore_id: str, plan: RestorePlan, body: bytes) -> str:
        return await self._library.write_verdict(restore_id, plan, body)

    async def remove_scratch(self, restore_id: str, plan: RestorePlan) -> list[str]:
        removed = await self._servers.remove(restore_id, plan.database) if plan.database is not None else []
        if plan.document_library is not None:
            removed.append(await self._library.remove(plan.document_library))
        return removed


async def _checked(check: Awaitable[list[str]], problems: list[str]) -> None:
    """Run a check: what it finds wrong, or a permanent refusal by Azure, is a problem (transient errors raise)."""
    try:
        problems += await check
    except PermanentProviderError as exc:
        problems.append(str(exc))


def _lists_the_backup(plan: RestorePlan) -> ArtefactCheck:
    """metadata.json lists the on-demand backup the plan restores."""

    def check(doc: MetadataDocument) -> str | None:
        assert plan.database is not None
        snapshot = doc.database.snapshot
        listed = (snapshot.location or snapshot.snapshot_id) if snapshot is not None else None
        if listed is None or listed.lower() != plan.database.artefact.lower():
            return f"does not list the on-demand backup {plan.database.artefact} the log recorded"
        return None

    return check


@contextlib.asynccontextmanager
async def open_restore_provider(settings: AzureSettings) -> AsyncIterator[AzureRestorer]:
    async with contextlib.AsyncExitStack() as stack:
        yield AzureRestorer(AzureClients(settings, stack), settings)
