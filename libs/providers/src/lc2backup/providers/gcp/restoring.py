"""The GCP provider's restore: the SQL export imported by Cloud SQL into a new database, the document library
copied back by one Storage Transfer job, both polled — no database or object byte passes through the restorer.

* database: ``databases.insert`` then ``instances.import`` of the backup's ``.sql.gz`` (``importing``: a claim in
  the backup's folder tells this restore's database and import from anyone else's, so a restart polls the
  import it started and never starts another);
* document library: ``transferJobs/lc2-restore-<restoreId>``, GCS to GCS from the backup's ``documentlibrary/`` to
  the target prefix, ``overwriteWhen: DIFFERENT`` (an object already there with the same MD5 and size is not
  written again), created once and run once (``transferjobs``), polled to its end;
* verification: the document library against the backup's copy (every object and its size, a sample of MD5s,
  from the two listings: a managed transfer writes no manifest file, so the copy's listing stands for it, its
  count checked against the one the backup recorded); the database by the import's outcome and its presence —
  Cloud SQL's export records no per-table figures, which the checks say.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.metadata import MetadataDocument
from lc2backup.domain.restoring import DatabasePlan, DocumentLibraryPlan, RestorePlan
from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.gcp.clients import GcpClients
from lc2backup.providers.gcp.importing import CloudSqlImports
from lc2backup.providers.gcp.names import restore_description, restore_job_name
from lc2backup.providers.gcp.settings import GcpSettings
from lc2backup.providers.gcp.storage import GcsBuckets
from lc2backup.providers.gcp.transferjobs import RUNNING, GcsPath, TransferJobs, failure
from lc2backup.providers.restore_checks import ArtefactCheck, ManifestLine, check_metadata, compare_library
from lc2backup.providers.restoring import LibraryRestored, Progress, Verdict

SERVICE = "the restorer"


def _lists_export(plan: RestorePlan) -> ArtefactCheck:
    def check(doc: MetadataDocument) -> str | None:
        export, database = doc.database.export, plan.database
        if database is not None and (export is None or export.location != database.artefact):
            return f"does not list the SQL export {database.artefact} the log recorded"
        return None

    return check


class GcpRestorer:
    name = "gcp"
    restores = frozenset({"export"})  # the SQL export; a backup run restores only onto its live instance

    def __init__(self, clients: GcpClients, settings: GcpSettings) -> None:
        self._buckets = GcsBuckets(clients)
        self._imports = CloudSqlImports(clients, settings)
        self._jobs = TransferJobs(clients)
        self._poll = settings.restore_poll_seconds

    # validation

    async def validate(self, restore_id: str, plan: RestorePlan) -> tuple[list[str], list[str]]:
        """A wrong name or a refused permission is a problem of the request (Rejected, naming it), not a failure of
        the restorer; outages stay transient (validated again later)."""
        problems: list[str] = []
        checks: list[str] = []
        database, library = plan.database, plan.document_library
        steps: list[Callable[[], Awaitable[None]]] = []
        if plan.metadata_location:
            steps.append(lambda: self._check_metadata(plan, problems, checks))
        if database is not None:
            steps.append(lambda: self._imports.check(restore_id, database, problems, checks))
        if library is not None:
            steps.append(lambda: self._check_library(library, problems, checks))
        for step in steps:
            try:
                await step()
            except PermanentProviderError as exc:
                problems.append(str(exc))
        return problems, checks

    async def _check_metadata(self, plan: RestorePlan, problems: list[str], checks: list[str]) -> None:
        assert plan.metadata_location is not None
        where = plan.metadata_location
        found = check_metadata(await self._buckets.read(where), where, plan, _lists_export(plan))
        problems += found
        checks += [] if found else [f"{where} matches the backup's log"]

    async def _check_library(self, plan: DocumentLibraryPlan, problems: list[str], checks: list[str]) -> None:
        where = f"gs://{plan.target_bucket}/{plan.target_prefix}"
        if not await self._buckets.exists(plan.target_bucket, "target bucket", "spec.documentLibrary.bucket"):
            problems.append(f"bucket gs://{plan.target_bucket} does not exist: create it first")
            return
        first = await self._buckets.objects(plan.target_bucket, plan.target_prefix, limit=1)
        if first and not plan.merge:
            problems.append(f"{where} is not empty (holds {next(iter(first))}): choose an empty prefix, or merge: true")
        else:
            checks.append(f"{where} is {'empty' if not first else 'merged into (merge: true)'}")

    # the branches

    async def restore_database(self, restore_id: str, plan: DatabasePlan, progress: Progress) -> int:
        await self._imports.restore(restore_id, plan)
        return 0  # Cloud SQL read the export, not us

    async def restore_document_library(
        self, restore_id: str, plan: DocumentLibraryPlan, progress: Progress
    ) -> LibraryRestored:
        project, name = await self._jobs.project(SERVICE), restore_job_name(restore_id)
        await self._jobs.create(
            project,
            name,
            restore_description(restore_id),
            GcsPath(plan.source_bucket, plan.source_prefix),
            GcsPath(plan.target_bucket, plan.target_prefix),
            overwrite_when="DIFFERENT",  # an object restored equal before a restart is not written again
        )
        reported = -1
        while True:
            operation = await self._jobs.newest(project, name)
            if operation is not None:
                c = operation.counters
                done = int(c.objects_copied_to_sink) + int(c.objects_from_source_skipped_by_sync)
                if operation.status.name not in RUNNING:
                    break
                if done != reported:
                    reported = done
                    await progress(done, int(c.bytes_copied_to_sink) + int(c.bytes_from_source_skipped_by_sync))
            await asyncio.sleep(self._poll)
        error = failure(operation)
        if error is not None:
            raise PermanentProviderError(f"restore of gs://{plan.source_bucket}/{plan.source_prefix}: {error}")
        found = int(c.objects_found_from_source)
        if plan.objects is not None and found != plan.objects:
            raise PermanentProviderError(
                f"the backup's copy gs://{plan.source_bucket}/{plan.source_prefix} holds {found} objects, the backup"
                f" copied {plan.objects}: objects of the backup are missing (or were added)"
            )
        return LibraryRestored(
            objects=found, bytes=int(c.bytes_found_from_source), copied=int(c.objects_copied_to_sink)
        )

    # verification

    async def verify(self, restore_id: str, plan: RestorePlan) -> Verdict:
        findings: list[str] = []
        checks: list[str] = []
        summary = VerificationSummary()
        if plan.database is not None:
            await self._imports.verify(restore_id, plan.database, findings, checks)
        library = plan.document_library
        if library is not None:
            summary = await self._verify_library(library, summary, findings, checks)
        return Verdict(summary, findings, checks)

    async def _verify_library(
        self, plan: DocumentLibraryPlan, summary: VerificationSummary, findings: list[str], checks: list[str]
    ) -> VerificationSummary:
        """Against the backup's copy: a managed transfer writes no manifest file, so the listing of the backup's
        ``documentlibrary/`` (sizes and MD5s, as GCS computed them) stands for it, its count checked against the
        one the backup recorded; every object's size and a sample of MD5s are compared."""
        copy, present = await asyncio.gather(
            self._buckets.objects(plan.source_bucket, plan.source_prefix),
            self._buckets.objects(plan.target_bucket, plan.target_prefix),
        )
        origin = f"gs://{plan.source_bucket}/{plan.source_prefix}"
        if plan.objects is not None and len(copy) != plan.objects:
            findings.append(f"the backup's copy {origin} holds {len(copy)} objects, the backup copied {plan.objects}")
        manifest = [ManifestLine(key, size, md5 or "") for key, (size, md5) in copy.items()]

        def differs(line: ManifestLine) -> str | None:
            md5 = present[line.key][1]
            if line.etag and md5 != line.etag:
                return f"object {line.key} has MD5 {md5}, {line.etag} in the backup's copy"
            return None

        where = f"gs://{plan.target_bucket}/{plan.target_prefix}"
        sizes = {key: size for key, (size, _) in present.items()}
        summary = compare_library(
            manifest,
            sizes,
            where,
            merge=plan.merge,
            differs=differs,
            sampled_what="MD5s equal the backup's copy",
            summary=summary,
            findings=findings,
            checks=checks,
        )
        return summary

    async def write_verdict(self, restore_id: str, plan: RestorePlan, body: bytes) -> str:
        """``verifications/<restoreId>.json`` in the backup's folder, next to ``metadata.json`` (never in it)."""
        if plan.metadata_location is None:
            raise PermanentProviderError(f"restore {restore_id}: the plan names no metadata.json to write beside")
        location = f"{plan.metadata_location.rsplit('/', 1)[0]}/verifications/{restore_id}.json"
        await self._buckets.put(location, body, "application/json")
        return location

    async def remove_scratch(self, restore_id: str, plan: RestorePlan) -> list[str]:
        removed: list[str] = []
        if plan.database is not None:
            removed += await self._imports.remove(restore_id, plan.database)
        library = plan.document_library
        if library is not None:
            keys = list(await self._buckets.objects(library.target_bucket, library.target_prefix))
            await self._buckets.delete(library.target_bucket, [f"{library.target_prefix}{key}" for key in keys])
            removed.append(f"{len(keys)} objects under gs://{library.target_bucket}/{library.target_prefix}")
        return removed


@contextlib.asynccontextmanager
async def open_restore_provider(settings: GcpSettings) -> AsyncIterator[GcpRestorer]:
    yield GcpRestorer(GcpClients(settings), settings)
