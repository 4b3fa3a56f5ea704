"""The document-library branch, driven by doclib-transfer's own delivery of ``BackupAdmitted``.

Start the transfer (record its job id and excluded prefixes), then check it: a managed transfer is polled
by nak'ing the message with a delay; our own copier (local and AWS providers) copies one slice of about
``copy_slice_seconds`` inside each check, recording its position in progress events (and stops if the
backup has ended meanwhile), and the message is nak'ed at once so the next delivery goes on from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from lc2backup.doclib_transfer import domain
from lc2backup.domain import BackupState, TransferCounters, TransferPosition
from lc2backup.eventing import Causation, DomainEvent, EventStore, RetryLater
from lc2backup.providers import (
    BackupJob,
    BranchRunner,
    DocumentTransferProvider,
    OperationAborted,
    PermanentProviderError,
    TransferStatus,
)

log = logging.getLogger(__name__)


def _stop_unless_running(state: BackupState) -> None:
    dl = state.document_library
    if state.terminal or dl.state != "TransferInProgress":
        why = f": {dl.cancellation}" if dl.cancellation else ""
        raise OperationAborted(f"backup {state.backup_id} is {state.state}, its document library {dl.state}{why}")


class TransferBranch(BranchRunner[DocumentTransferProvider]):
    service = "doclib-transfer"
    branch = "transfer"

    def __init__(
        self,
        store: EventStore,
        providers: Mapping[str, DocumentTransferProvider],
        *,
        poll_interval: float,
        deadline: timedelta,
        max_concurrent_copies: int,
        slice_seconds: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(store, providers, poll_interval=poll_interval, deadline=deadline, clock=clock)
        self._copies = asyncio.Semaphore(max_concurrent_copies)
        self._slice = slice_seconds

    def next_step(self, state: BackupState) -> tuple[str, str]:
        return domain.next_step(state, self._clock(), self._deadline)

    def failure(self, state: BackupState, reason: str, before: BackupState | None) -> Sequence[DomainEvent]:
        return domain.record_failure(state, reason)

    async def step(
        self,
        kind: str,
        provider: DocumentTransferProvider,
        job: BackupJob,
        state: BackupState,
        causation: Causation,
        attempt: int,
    ) -> BackupState | None:
        if kind == "start":
            return await self._start(provider, job, causation)
        await self._check(provider, job, state, causation, attempt)
        return None

    async def _start(self, provider: DocumentTransferProvider, job: BackupJob, causation: Causation) -> BackupState:
        started = await provider.start_transfer(job)  # the reference, as the event records it
        return await self.record(job.backup_id, causation, lambda s: domain.record_started(s, started))

    async def _check(
        self,
        provider: DocumentTransferProvider,
        job: BackupJob,
        state: BackupState,
        causation: Causation,
        attempt: int,
    ) -> None:
        transfer = state.document_library.transfer
        assert transfer is not None

        async def progress(counters: TransferCounters, position: TransferPosition | None = None) -> None:
            after = await self.record(
                job.backup_id, causation, lambda s: domain.record_progress(s, counters, attempt, position)
            )
            _stop_unless_running(after)

        async def still_running() -> None:
            _stop_unless_running(await self.load(job.backup_id))

        runs_here = provider.capabilities.runs_here  # our copier: a bounded number of copies at once
        if self._copies.locked() and runs_here:
            raise RetryLater("waiting for a copy slot", delay=5.0)
        started = state.document_library.started_at or self._clock()
        remaining = (self._deadline - (self._clock() - started)).total_seconds()
        async with self._copies if runs_here else contextlib.nullcontext():
            try:
                async with asyncio.timeout(max(remaining, 1.0)):
                    dl = state.document_library
                    resume = TransferStatus(done=False, counters=dl.counters, position=dl.position)
                    status = await provider.check_transfer(
                        job, transfer, progress, still_running, resume=resume, slice_seconds=self._slice
                    )
            except TimeoutError as exc:
                raise PermanentProviderError(f"transfer did not finish within {self._deadline}") from exc
        if status.error:
            raise PermanentProviderError(f"transfer {transfer.job_id} failed: {status.error}")
        if not status.done:
            if status.position is not None:  # our copier: its position is recorded, go on at once
                raise RetryLater(f"copy {transfer.job_id} goes on after {status.position.after_key!r}", delay=0.0)
            await progress(status.counters)
            raise RetryLater(f"transfer {transfer.job_id} in progress", delay=self._poll)
        await self.record(
            job.backup_id, causation, lambda s: domain.record_completed(s, status.counters, status.manifest_location)
        )
