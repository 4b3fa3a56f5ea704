"""The database branch, driven by db-export's own delivery of ``BackupAdmitted``.

Each delivery advances the branch as far as it can (start, poll, record) and, while a managed operation is
still running, naks the message with the poll interval: the poll is durable, and a restarted db-export
resumes it from the recorded operation id. Every outcome is appended through ``EventStore.execute`` so a
stale decision is re-made on fresh state instead of being written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from nats.aio.msg import Msg

from lc2backup.db_export import domain
from lc2backup.domain import BackupLayout, BackupState, fold
from lc2backup.domain.events import (
    BackupAdmitted,
    DatabaseExportCompleted,
    DatabaseExportStarted,
    DatabaseSnapshotCompleted,
)
from lc2backup.eventing import (
    Causation,
    DomainEvent,
    EventingError,
    EventStore,
    Repository,
    RetryLater,
    consuming_span,
)
from lc2backup.providers import (
    BackupJob,
    DatabaseBackupProvider,
    ExportRef,
    ExportStatus,
    OperationAborted,
    PermanentProviderError,
    SnapshotRef,
    TransientProviderError,
)
from lc2backup.runtime import redact

log = logging.getLogger(__name__)


class DatabaseBranch:
    def __init__(
        self,
        store: EventStore,
        providers: Mapping[str, DatabaseBackupProvider],
        *,
        poll_interval: float,
        deadline: timedelta,
        max_concurrent_dumps: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._backups = Repository(store, fold, finished=lambda s: s.terminal)
        self._providers = providers
        self._poll = poll_interval
        self._deadline = deadline
        self._dumps = asyncio.Semaphore(max_concurrent_dumps)
        self._clock = clock

    async def on_event(self, msg: Msg) -> None:
        admitted = self._store.delivered(msg)  # not a readable event: dead-lettered with the reason
        if admitted.envelope.type != BackupAdmitted.event_type:
            return
        backup_id = admitted.envelope.backup_id
        state, loaded = await self._backups.load(backup_id)
        requested = loaded.origin
        causation = Causation(str(requested.id) if requested else None)
        with consuming_span("db-export", requested.trace if requested else None, backup_id=backup_id):
            await self.advance(backup_id, state, causation)

    async def on_dead_letter(self, msg: Msg, reason: str) -> None:
        """Our delivery of a backup's ``BackupAdmitted`` gave up: fail the branch. Poison is no work of ours."""
        try:
            backup_id = self._store.delivered(msg).envelope.backup_id
        except EventingError:
            return
        await self._fail(backup_id, Causation(None), f"internal error in db-export: {redact(reason)}")

    async def _fail(
        self, backup_id: str, causation: Causation, reason: str, step: Literal["snapshot", "export"] | None = None
    ) -> None:
        await self._record(
            backup_id, causation, lambda s: domain.record_failure(s, step or domain.failing_step(s), reason)
        )

    async def _record(
        self, backup_id: str, causation: Causation, decide: Callable[[BackupState], Sequence[DomainEvent]]
    ) -> BackupState:
        return (await self._backups.record(backup_id, causation, decide)).state

    async def advance(self, backup_id: str, state: BackupState, causation: Causation) -> None:
        while True:
            step = domain.next_step(state, self._clock(), self._deadline)
            if step.kind == "finished":
                return
            if step.kind == "timed_out":
                await self._fail(backup_id, causation, step.reason)
                return
            assert state.spec is not None
            provider = self._providers.get(state.spec.provider)
            if provider is None:
                await self._fail(
                    backup_id,
                    causation,
                    f"provider {state.spec.provider!r} is not enabled in db-export (LC2_PROVIDERS)",
                )
                return
            job = BackupJob(backup_id, state.spec, BackupLayout.of(state.spec, backup_id))
            try:
                state = await self._step(step.kind, provider, job, state, causation)
            except TransientProviderError as exc:
                raise RetryLater(redact(str(exc)), delay=exc.retry_after or self._poll) from exc
            except OperationAborted as exc:
                log.info("database branch of %s stopped: %s", backup_id, exc, extra={"backup_id": backup_id})
                return
            except PermanentProviderError as exc:
                reason = redact(str(exc))
                log.warning("database branch of %s failed: %s", backup_id, reason, extra={"backup_id": backup_id})
                await self._fail(backup_id, causation, reason, domain.failing_step(state))
                return

    async def _step(
        self, kind: str, provider: DatabaseBackupProvider, job: BackupJob, state: BackupState, causation: Causation
    ) -> BackupState:
        db = state.database
        if kind == "start_snapshot":
            snap_ref = await provider.start_snapshot(job)
            return await self._record(
                job.backup_id,
                causation,
                lambda s: domain.record_snapshot_started(s, snap_ref.snapshot_id, job.spec.database.instance_id),
            )
        if kind == "check_snapshot":
            assert db.snapshot is not None
            snap = await provider.check_snapshot(job, SnapshotRef(db.snapshot.snapshot_id))
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
            return await self._record(
                job.backup_id, causation, lambda s: domain.record_snapshot_completed(s, completed)
            )
        if kind == "start_export":
            snapshot = SnapshotRef(db.snapshot.snapshot_id) if db.snapshot else None
            ref = await provider.start_export(job, snapshot)
            started = DatabaseExportStarted(
                operation_id=ref.operation_id, location=ref.location, format=ref.format, restorable=ref.restorable
            )
            return await self._record(job.backup_id, causation, lambda s: domain.record_export_started(s, started))
        return await self._check_export(provider, job, state, causation)

    async def _check_export(
        self, provider: DatabaseBackupProvider, job: BackupJob, state: BackupState, causation: Causation
    ) -> BackupState:
        export = state.database.export
        assert export is not None
        ref = ExportRef(export.operation_id, export.location, export.format, export.restorable)

        async def progress(status: ExportStatus) -> None:
            after = await self._record(
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

        if self._dumps.locked() and provider.name == "local":
            raise RetryLater("waiting for a dump slot", delay=5.0)
        remaining = (self._deadline - (self._clock() - (state.database.started_at or self._clock()))).total_seconds()
        async with self._dumps if provider.name == "local" else contextlib.nullcontext():
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
        return await self._record(job.backup_id, causation, lambda s: domain.record_export_completed(s, completed))
