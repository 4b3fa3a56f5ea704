"""metadata's handler: on each branch outcome, decide whether the backup can be completed or failed.

Only branch outcomes and ``BackupMetadataWritten`` can change the decision, so the consumer only receives
those event types (the event type is the last token of the subject). A metadata.json that cannot be written
(the object store unreachable) is retried until ``deadline`` after both branches completed, then the backup
fails with the reason: it never stays in GeneratingMetadata forever.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg

from lc2backup.domain import BackupLayout, BackupState, fold
from lc2backup.domain.wire import DomainEvent
from lc2backup.eventing import Causation, EventingError, EventStore, Repository, RetryLater, consuming_span
from lc2backup.eventing.permissions import SERVICES
from lc2backup.metadata import domain
from lc2backup.providers import ArtifactStore, PermanentProviderError, TransientProviderError
from lc2backup.runtime import KeyedLocks, redact

log = logging.getLogger(__name__)

TRIGGERS = SERVICES["metadata"].received_types("metadata")  # the consumer's filter, declared with the grants


class Completion:
    def __init__(
        self,
        store: EventStore,
        stores: Mapping[str, ArtifactStore],
        retry_delay: float = 5.0,
        deadline: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._backups = Repository(store, fold, finished=lambda s: s.terminal)
        self._stores = stores
        self._retry_delay = retry_delay
        self._deadline = deadline
        self._clock = clock
        self._locks = KeyedLocks()

    async def on_event(self, msg: Msg) -> None:
        trigger = self._store.delivered(msg).envelope  # not a readable event: dead-lettered with the reason
        if trigger.type not in TRIGGERS:
            return
        backup_id = trigger.backup_id
        # Both branch outcomes often arrive together: one at a time per backup, the second sees the first's
        # metadata.json and events, instead of racing it to a 412 and a read-back (benchmark B2).
        async with self._locks.hold(backup_id):
            state, _ = await self._backups.load(backup_id)
            causation = Causation(str(trigger.id))
            with consuming_span("metadata", trigger.trace, backup_id=backup_id):
                await self.advance(backup_id, state, causation)

    async def on_dead_letter(self, msg: Msg, reason: str) -> None:
        """A trigger we gave up on would leave its backup unfinished: fail it instead. Poison is no backup's."""
        try:
            trigger = self._store.delivered(msg).envelope
        except EventingError:
            return
        failure = f"internal error in metadata: {redact(reason)}"
        await self._record(
            trigger.backup_id, Causation(str(trigger.id)), lambda s: domain.record_metadata_failure(s, failure)
        )

    async def _record(
        self, backup_id: str, causation: Causation, decide: Callable[[BackupState], Sequence[DomainEvent]]
    ) -> BackupState:
        return (await self._backups.record(backup_id, causation, decide)).state

    async def advance(self, backup_id: str, state: BackupState, causation: Causation) -> None:
        while True:
            action = domain.next_action(state)
            if action == "nothing":
                return
            if action == "fail":
                await self._record(backup_id, causation, domain.record_failed)
                return
            if action == "succeed":
                done = await self._backups.record(backup_id, causation, domain.record_succeeded)
                if done.appended:
                    log.info("backup %s succeeded", backup_id, extra={"backup_id": backup_id})
                return
            state = await self._write(backup_id, state, causation)

    async def _write(self, backup_id: str, state: BackupState, causation: Causation) -> BackupState:
        assert state.spec is not None
        store = self._stores.get(state.spec.provider)
        if store is None:
            reason = f"provider {state.spec.provider!r} is not enabled in metadata (LC2_PROVIDERS)"
            return await self._record(backup_id, causation, lambda s: domain.record_metadata_failure(s, reason))
        layout = BackupLayout.of(state.spec, backup_id)
        body = domain.metadata_document(state).render()
        try:
            result = await store.put_once(layout, layout.metadata_key, body, "application/json")
        except TransientProviderError as exc:
            if not domain.write_overdue(state, self._clock(), self._deadline):
                raise RetryLater(redact(str(exc)), delay=self._retry_delay) from exc
            reason = f"cannot write metadata.json within {self._deadline}: {redact(str(exc))}"
            return await self._record(backup_id, causation, lambda s: domain.record_metadata_failure(s, reason))
        except PermanentProviderError as exc:
            reason = f"cannot write metadata.json: {redact(str(exc))}"
            return await self._record(backup_id, causation, lambda s: domain.record_metadata_failure(s, reason))
        if not result.created:
            assert result.existing is not None
            if not domain.belongs_to(result.existing, backup_id):
                reason = f"{result.location} already exists and belongs to another backup"
                return await self._record(backup_id, causation, lambda s: domain.record_metadata_failure(s, reason))
            body = result.existing  # written by an earlier delivery: keep that one
        sha = hashlib.sha256(body).hexdigest()
        return await self._record(
            backup_id, causation, lambda s: domain.record_metadata_written(s, result.location, len(body), sha)
        )
