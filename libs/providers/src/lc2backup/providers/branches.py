"""The one skeleton both branch services run: db-export's database branch and doclib-transfer's document library.

Each service's own delivery of ``BackupAdmitted`` drives its branch: load and fold the backup, then advance it
as far as it goes — decide the next step (pure, the service's ``domain.py``), find the provider the request
names, start or poll its operation, record the outcome through the repository (a stale decision is re-made on
fresh state, never written twice). A running operation naks the message (``RetryLater``): the poll is durable
and a restarted service resumes it from the recorded reference. Provider errors are mapped here, once:
transient → retry later, ``OperationAborted`` → stop quietly (the backup ended elsewhere), permanent → the
branch's failure event. A service supplies only its steps (``next_step``, ``step``) and its failure event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Generic, TypeVar

from nats.aio.msg import Msg

from lc2backup.domain import BackupLayout, BackupState, fold
from lc2backup.domain.events import BackupAdmitted
from lc2backup.eventing import (
    Causation,
    DomainEvent,
    EventingError,
    EventStore,
    Repository,
    RetryLater,
    consuming_span,
)
from lc2backup.providers.base import BackupJob
from lc2backup.providers.errors import OperationAborted, PermanentProviderError, TransientProviderError
from lc2backup.runtime import redact

log = logging.getLogger(__name__)

P = TypeVar("P")


def attempt_of(msg: Msg) -> int:
    """How many times this message was delivered (1 on the first delivery)."""
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


class BranchRunner(Generic[P]):
    service: ClassVar[str]  # the service's name, as in its logs and its consumer ("db-export")
    branch: ClassVar[str]  # what it runs, for the logs ("database branch")

    def __init__(
        self,
        store: EventStore,
        providers: Mapping[str, P],
        *,
        poll_interval: float,
        deadline: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._backups = Repository(store, fold, finished=lambda s: s.terminal)
        self._providers = providers
        self._poll = poll_interval
        self._deadline = deadline
        self._clock = clock

    # what a service supplies

    def next_step(self, state: BackupState) -> tuple[str, str]:
        """(kind, reason): ``finished``, ``timed_out`` (with the reason) or a step of the service's own."""
        raise NotImplementedError

    async def step(
        self, kind: str, provider: P, job: BackupJob, state: BackupState, causation: Causation, attempt: int
    ) -> BackupState | None:
        """Run one step; the state after it to go on, or None when this delivery is done."""
        raise NotImplementedError

    def failure(self, state: BackupState, reason: str, before: BackupState | None) -> Sequence[DomainEvent]:
        """The branch's failure event(s) on ``state`` (``before``: the state the failing step started from)."""
        raise NotImplementedError

    # the skeleton

    async def on_event(self, msg: Msg) -> None:
        admitted = self._store.delivered(msg)  # not a readable event: dead-lettered with the reason
        if admitted.envelope.type != BackupAdmitted.event_type:
            return
        backup_id = admitted.envelope.backup_id
        state, loaded = await self._backups.load(backup_id)
        requested = loaded.origin
        causation = Causation(str(requested.id) if requested else None)
        with consuming_span(self.service, requested.trace if requested else None, backup_id=backup_id):
            await self.advance(backup_id, state, causation, attempt_of(msg))

    async def on_dead_letter(self, msg: Msg, reason: str) -> None:
        """Our delivery of a backup's ``BackupAdmitted`` gave up: fail the branch. Poison is no work of ours."""
        try:
            backup_id = self._store.delivered(msg).envelope.backup_id
        except EventingError:
            return
        await self.fail(backup_id, Causation(None), f"internal error in {self.service}: {redact(reason)}")

    async def fail(self, backup_id: str, causation: Causation, reason: str, before: BackupState | None = None) -> None:
        await self.record(backup_id, causation, lambda s: self.failure(s, reason, before))

    async def record(
        self, backup_id: str, causation: Causation, decide: Callable[[BackupState], Sequence[DomainEvent]]
    ) -> BackupState:
        return (await self._backups.record(backup_id, causation, decide)).state

    async def load(self, backup_id: str) -> BackupState:
        state, _ = await self._backups.load(backup_id)
        return state

    async def advance(self, backup_id: str, state: BackupState, causation: Causation, attempt: int = 1) -> None:
        while True:
            kind, reason = self.next_step(state)
            if kind == "finished":
                return
            if kind == "timed_out":
                await self.fail(backup_id, causation, reason)
                return
            assert state.spec is not None
            provider = self._providers.get(state.spec.provider)
            if provider is None:
                await self.fail(
                    backup_id,
                    causation,
                    f"provider {state.spec.provider!r} is not enabled in {self.service} (LC2_PROVIDERS)",
                )
                return
            job = BackupJob(backup_id, state.spec, BackupLayout.of(state.spec, backup_id))
            after = await self.attempt(kind, provider, job, state, causation, attempt)
            if after is None:
                return
            state = after

    async def attempt(
        self, kind: str, provider: P, job: BackupJob, state: BackupState, causation: Causation, attempt: int = 1
    ) -> BackupState | None:
        """One step with the provider's errors mapped (see the module): the state after it, or None when the
        branch stops here (failed, or aborted)."""
        try:
            return await self.step(kind, provider, job, state, causation, attempt)
        except TransientProviderError as exc:
            raise RetryLater(redact(str(exc)), delay=exc.retry_after or self._poll) from exc
        except OperationAborted as exc:
            log.info("%s of %s stopped: %s", self.branch, job.backup_id, exc, extra={"backup_id": job.backup_id})
            return None
        except PermanentProviderError as exc:
            reason = redact(str(exc))
            log.warning("%s of %s failed: %s", self.branch, job.backup_id, reason, extra={"backup_id": job.backup_id})
            await self.fail(job.backup_id, causation, reason, state)
            return None
