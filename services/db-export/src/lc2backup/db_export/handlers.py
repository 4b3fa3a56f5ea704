"""The database branch, driven by db-export's own delivery of ``BackupAdmitted`` (``BranchRunner``).

Each delivery advances the branch as far as it can (start, poll, record) and, while a managed operation is
still running, naks the message with the poll interval: the poll is durable, and a restarted db-export
resumes it from the recorded operation id. This module supplies the steps; the runner the rest.

An export that runs here (a local dump: ``Capabilities.runs_here``) runs for as long as the database takes, so
it does not run inside a delivery: the delivery starts it in the background under the backup's lease
(``LeasedWork``) and polls like any other. The background run records the outcome itself (progress,
completed, or the branch's failure); a replica that finds the lease held leaves the dump alone, and when the
process that held it dies, its lease runs out and the next poll starts the dump again (a complete dump is found
and reused, not made twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from lc2backup.db_export import domain
from lc2backup.domain import BackupState
from lc2backup.domain.events import DatabaseExportCompleted, DatabaseSnapshotCompleted
from lc2backup.eventing import Causation, DomainEvent, EventStore, LeasedWork, RetryLater
from lc2backup.providers import (
    BackupJob,
    BranchRunner,
    DatabaseBackupProvider,
    ExportStatus,
    OperationAborted,
    PermanentProviderError,
)

log = logging.getLogger(__name__)


class DatabaseBranch(BranchRunner[DatabaseBackupProvider]):
    service = "db-export"
    branch = "database branch"

    def __init__(
        self,
        store: EventStore,
        providers: Mapping[str, DatabaseBackupProvider],
        *,
        poll_interval: float,
        deadline: timedelta,
        max_concurrent_dumps: int,
        background: LeasedWork,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(store, providers, poll_interval=poll_interval, deadline=deadline, clock=clock)
        self._dumps = asyncio.Semaphore(max_concurrent_dumps)
        self._background = background

    def next_step(self, state: BackupState) -> tuple[str, str]:
        step = domain.next_step(state, self._clock(), self._deadline)
        return step.kind, step.reason

    def failure(self, state: BackupState, reason: str, before: BackupState | None) -> Sequence[DomainEvent]:
        return domain.record_failure(state, domain.failing_step(before or state), reason)

    async def step(
        self,
        kind: str,
        provider: DatabaseBackupProvider,
        job: BackupJob,
        state: BackupState,
        causation: Causation,
        attempt: int,
    ) -> BackupState:
        return await self._step(kind, provider, job, state, causation)

    async def _step(
        self, kind: str, provider: DatabaseBackupProvider, job: BackupJob, state: BackupState, causation: Causation
    ) -> BackupState:
        db = state.database
        if kind == "start_snapshot":
            snapshot_started = await provider.start_snapshot(job)  # the reference, as the event records it
            return await self.record(
                job.backup_id, causation, lambda s: domain.record_snapshot_started(s, snapshot_started)
            )
        if kind == "check_snapshot":
            assert db.snapshot is not None
            snap = await provider.check_snapshot(job, db.snapshot)
            if snap.error:
                raise PermanentProviderError(f"snapshot {db.snapshot.snapshot_id} failed: {snap.error}")
            if not snap.done:
                raise RetryLater(f"snapshot {db.snapshot.snapshot_id} in progress", delay=self._poll)
            completed = DatabaseSnapshotCompleted(
                snapshot_id=db.snapshot.snapshot_id,
                location=snap.location,
                size_bytes=snap.size_bytes,
                engine=snap.engine,
                engine_version=snap.engine_version,
            )
            return await self.record(job.backup_id, causation, lambda s: domain.record_snapshot_completed(s, completed))
        if kind == "start_export":
            started = await provider.start_export(job, db.snapshot)  # the reference, as the event records it
            return await self.record(job.backup_id, causation, lambda s: domain.record_export_started(s, started))
        if kind == "check_export" and provider.capabilities.runs_here:
            await self._export_in_background(provider, job, state, causation)
        return await self._check_export(provider, job, state, causation)

    async def _export_in_background(
        self, provider: DatabaseBackupProvider, job: BackupJob, state: BackupState, causation: Causation
    ) -> None:
        """Start the export in this process under the backup's lease (see the module); always ``RetryLater``:
        the outcome is recorded by the background run and seen by a later poll."""
        key = f"export.{job.backup_id}"
        if self._background.running(key):
            raise RetryLater(f"export of {job.backup_id} runs in this process", delay=self._poll)
        if provider.capabilities.moves_bytes and self._dumps.locked():
            raise RetryLater("waiting for a dump slot", delay=5.0)

        async def run() -> None:
            try:
                await self.attempt("run_export", provider, job, state, causation)
            except RetryLater as retry:  # transient: the lease is given up, and the next poll starts it again
                log.warning("export of %s stopped: %s", job.backup_id, retry.reason, extra={"backup_id": job.backup_id})

        holder = await self._background.start(key, run)
        where = "this process" if holder is None else holder
        raise RetryLater(f"export of {job.backup_id} runs in {where}", delay=self._poll)

    async def _check_export(
        self, provider: DatabaseBackupProvider, job: BackupJob, state: BackupState, causation: Causation
    ) -> BackupState:
        export = state.database.export
        assert export is not None
        ref = export

        async def progress(status: ExportStatus) -> None:
            after = await self.record(
                job.backup_id,
                causation,
                lambda s: domain.record_export_progress(
                    s, status.bytes_written, status.estimated_total_bytes, status.percent
                ),
            )
            if after.terminal or after.database.state != "ExportInProgress":
                why = f": {after.database.cancellation}" if after.database.cancellation else ""
                raise OperationAborted(
                    f"backup {job.backup_id} is {after.state}, its database {after.database.state}{why}"
                )

        moves_bytes = provider.capabilities.moves_bytes  # its bytes pass through us: a bounded number at once
        if self._dumps.locked() and moves_bytes:
            raise RetryLater("waiting for a dump slot", delay=5.0)
        remaining = (self._deadline - (self._clock() - (state.database.started_at or self._clock()))).total_seconds()
        async with self._dumps if moves_bytes else contextlib.nullcontext():
            try:
                async with asyncio.timeout(max(remaining, 1.0)):
                    status = await provider.check_export(job, ref, progress)
            except TimeoutError as exc:
                raise PermanentProviderError(f"export did not finish within {self._deadline}") from exc
        if status.error:
            raise PermanentProviderError(f"export {ref.operation_id} failed: {status.error}")
        if not status.done:
            await progress(status)
            raise RetryLater(f"export {ref.operation_id} in progress", delay=self._poll)
        completed = DatabaseExportCompleted(
            location=ref.location,
            format=ref.format,
            restorable=ref.restorable,
            size_bytes=status.size_bytes,
            sha256=status.sha256,
            engine=status.engine,
            engine_version=status.engine_version,
            extracted_gb=status.extracted_gb,
        )
        return await self.record(job.backup_id, causation, lambda s: domain.record_export_completed(s, completed))
