"""The document-library branch, driven by doclib-transfer's own delivery of ``BackupAdmitted``.

Start the transfer (record its job id and excluded prefixes), then check it: a managed transfer is polled
by nak'ing the message with a delay; the local provider copies inside the check and reports progress,
which is appended as events (and stops the copy if the backup has ended meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg

from lc2backup.doclib_transfer import domain
from lc2backup.domain import BackupLayout, BackupState, TransferCounters, fold
from lc2backup.domain.events import BackupAdmitted, DocumentLibraryTransferStarted
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
    DocumentTransferProvider,
    OperationAborted,
    PermanentProviderError,
    TransferRef,
    TransientProviderError,
)
from lc2backup.runtime import redact

log = logging.getLogger(__name__)


def _attempt(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


def _stop_unless_running(state: BackupState) -> None:
    dl = state.document_library
    if state.terminal or dl.state != "TransferInProgress":
        why = f": {dl.cancellation}" if dl.cancellation else ""
        raise OperationAborted(f"backup {state.backup_id} is {state.state}, its document library {dl.state}{why}")


class TransferBranch:
    def __init__(
        self,
        store: EventStore,
        providers: Mapping[str, DocumentTransferProvider],
        *,
        poll_interval: float,
        deadline: timedelta,
        max_concurrent_copies: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._backups = Repository(store, fold, finished=lambda s: s.terminal)
        self._providers = providers
        self._poll = poll_interval
        self._deadline = deadline
        self._copies = asyncio.Semaphore(max_concurrent_copies)
        self._clock = clock

    async def on_event(self, msg: Msg) -> None:
        admitted = self._store.delivered(msg)  # not a readable event: dead-lettered with the reason
        if admitted.envelope.type != BackupAdmitted.event_type:
            return
        backup_id = admitted.envelope.backup_id
        state, loaded = await self._backups.load(backup_id)
        requested = loaded.origin
        causation = Causation(str(requested.id) if requested else None)
        with consuming_span("doclib-transfer", requested.trace if requested else None, backup_id=backup_id):
            await self.advance(backup_id, state, causation, _attempt(msg))

    async def on_dead_letter(self, msg: Msg, reason: str) -> None:
        """Our delivery of a backup's ``BackupAdmitted`` gave up: fail the branch. Poison is no work of ours."""
        try:
            backup_id = self._store.delivered(msg).envelope.backup_id
        except EventingError:
            return
        await self._fail(backup_id, Causation(None), f"internal error in doclib-transfer: {redact(reason)}")

    async def _fail(self, backup_id: str, causation: Causation, reason: str) -> None:
        await self._record(backup_id, causation, lambda s: domain.record_failure(s, reason))

    async def _record(
        self, backup_id: str, causation: Causation, decide: Callable[[BackupState], Sequence[DomainEvent]]
    ) -> BackupState:
        return (await self._backups.record(backup_id, causation, decide)).state

    async def advance(self, backup_id: str, state: BackupState, causation: Causation, attempt: int) -> None:
        while True:
            kind, reason = domain.next_step(state, self._clock(), self._deadline)
            if kind == "finished":
                return
            if kind == "timed_out":
                await self._fail(backup_id, causation, reason)
                return
            assert state.spec is not None
            provider = self._providers.get(state.spec.provider)
            if provider is None:
                await self._fail(
                    backup_id,
                    causation,
                    f"provider {state.spec.provider!r} is not enabled in doclib-transfer (LC2_PROVIDERS)",
                )
                return
            job = BackupJob(backup_id, state.spec, BackupLayout.of(state.spec, backup_id))
            try:
                if kind == "start":
                    state = await self._start(provider, job, causation)
                else:
                    await self._check(provider, job, state, causation, attempt)
                    return
            except TransientProviderError as exc:
                raise RetryLater(redact(str(exc)), delay=exc.retry_after or self._poll) from exc
            except OperationAborted as exc:
                log.info("transfer of %s stopped: %s", backup_id, exc, extra={"backup_id": backup_id})
                return
            except PermanentProviderError as exc:
                failure = redact(str(exc))
                log.warning("transfer of %s failed: %s", backup_id, failure, extra={"backup_id": backup_id})
                await self._fail(backup_id, causation, failure)
                return

    async def _start(self, provider: DocumentTransferProvider, job: BackupJob, causation: Causation) -> BackupState:
        ref = await provider.start_transfer(job)
        started = DocumentLibraryTransferStarted(
            job_id=ref.job_id,
            method=ref.method,
            source=ref.source,
            destination=ref.destination,
            exclude_generated_files=job.spec.document_library.exclude_generated_files,
            excluded_prefixes=ref.excluded_prefixes,
        )
        return await self._record(job.backup_id, causation, lambda s: domain.record_started(s, started))

    async def _check(
        self,
        provider: DocumentTransferProvider,
        job: BackupJob,
        state: BackupState,
        causation: Causation,
        attempt: int,
    ) -> None:
        info = state.document_library.transfer
        assert info is not None
        ref = TransferRef(info.job_id, info.method, info.source, info.destination, info.excluded_prefixes)

        async def progress(counters: TransferCounters) -> None:
            after = await self._record(job.backup_id, causation, lambda s: domain.record_progress(s, counters, attempt))
            _stop_unless_running(after)

        async def still_running() -> None:
            current, _ = await self._backups.load(job.backup_id)
            _stop_unless_running(current)

        if self._copies.locked():
            raise RetryLater("waiting for a copy slot", delay=5.0)
        started = state.document_library.started_at or self._clock()
        remaining = (self._deadline - (self._clock() - started)).total_seconds()
        async with self._copies:
            try:
                async with asyncio.timeout(max(remaining, 1.0)):
                    status = await provider.check_transfer(job, ref, progress, still_running)
            except TimeoutError as exc:
                raise PermanentProviderError(f"transfer did not finish within {self._deadline}") from exc
        if status.error:
            raise PermanentProviderError(f"transfer {ref.job_id} failed: {status.error}")
        if not status.done:
            await progress(status.counters)
            raise RetryLater(f"transfer {ref.job_id} in progress", delay=self._poll)
        await self._record(
            job.backup_id, causation, lambda s: domain.record_completed(s, status.counters, status.manifest_location)
        )
