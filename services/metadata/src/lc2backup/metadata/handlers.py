"""metadata's handler: on each branch outcome, decide whether the backup can be completed or failed.

Only branch outcomes and ``BackupMetadataWritten`` can change the decision, so the consumer only receives
those event types (the event type is the last token of the subject).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence

from nats.aio.msg import Msg

from lc2backup.domain import BackupLayout, BackupState, fold
from lc2backup.eventing import TYPE_HEADER, Causation, DomainEvent, EventStore, Repository, RetryLater, consuming_span
from lc2backup.metadata import domain
from lc2backup.providers import ArtifactStore, PermanentProviderError, TransientProviderError
from lc2backup.runtime import redact

log = logging.getLogger(__name__)

TRIGGERS = (
    "DatabaseExportCompleted", "DatabaseBranchFailed", "DocumentLibraryTransferCompleted",
    "DocumentLibraryTransferFailed", "BackupMetadataWritten",
)  # fmt: skip


class Completion:
    def __init__(self, store: EventStore, stores: Mapping[str, ArtifactStore], retry_delay: float = 5.0) -> None:
        self._store = store
        self._backups = Repository(store, fold)
        self._stores = stores
        self._retry_delay = retry_delay

    async def on_event(self, msg: Msg) -> None:
        headers = msg.headers or {}
        if headers.get(TYPE_HEADER) not in TRIGGERS:
            return
        backup_id = self._store.topology.backup_id_of(msg.subject)
        history = await self._store.load(backup_id)
        trigger = next((e.envelope for e in history.events if e.sequence == msg.metadata.sequence.stream), None)
        causation = Causation(str(trigger.id) if trigger else None)
        with consuming_span("metadata", trigger.trace if trigger else None, backup_id=backup_id):
            await self.advance(backup_id, fold(backup_id, history.events), causation)

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
        body = domain.render(domain.metadata_document(state))
        try:
            result = await store.put_once(layout.bucket, layout.metadata_key, body, "application/json")
        except TransientProviderError as exc:
            raise RetryLater(redact(str(exc)), delay=self._retry_delay) from exc
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
