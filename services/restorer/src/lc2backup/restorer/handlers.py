"""The restorer's two consumers: restore commands (intake) and its own delivery of ``RestoreAdmitted`` (the work).

Intake (``lc2.backup.cmd.restore``): read the command once, fold the backup it names, plan the restore from the
backup's log (``lc2backup.domain.restore_planning``), take the target's lane (one restore per target project +
environment at a time, in the lanes KV bucket; a verification's scratch targets are its own and take none), and
append ``RestoreRequested`` with ``RestoreAdmitted`` or
``RestoreRejected`` on the restore's own subject, with expected sequence 0: a re-sent command decides nothing.

Work: a restore moves bytes here (the local provider's dump, read from the bucket into ``pg_restore``) and runs
for as long as the database takes, so it runs in the background under the restore's lease (``LeasedWork``), like
db-export's dumps; the delivery comes back every poll interval until the restore has ended, and a restore whose
process died is taken up again by the next poll once its lease runs out. Every step is recorded before the next
starts (validated, each branch started, progress, completed or failed, the verdict, the scratch removed, the
end), and every provider call is idempotent under the restore id (``lc2backup.providers.restoring``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from lc2backup.domain import fold
from lc2backup.domain.events import (
    DatabaseRestoreCompleted,
    DatabaseRestoreStarted,
    DocumentLibraryRestoreCompleted,
    DocumentLibraryRestoreStarted,
    RequestSource,
    RestoreAdmitted,
)
from lc2backup.domain.restore_planning import plan_restore
from lc2backup.domain.restore_state import RestoreState, fold_restore
from lc2backup.domain.restoring import RestorePlan, read_restore_command
from lc2backup.domain.spec import Problem
from lc2backup.domain.wire import DomainEvent
from lc2backup.eventing import (
    Causation,
    EventingError,
    EventStore,
    LeasedWork,
    PoisonMessage,
    Repository,
    RetryLater,
    consuming_span,
    message_id,
)
from lc2backup.providers.errors import OperationAborted, PermanentProviderError, TransientProviderError
from lc2backup.providers.restoring import RestoreProvider
from lc2backup.restorer import domain
from lc2backup.runtime import redact

log = logging.getLogger(__name__)


def lane_key(plan: RestorePlan) -> str:
    return f"restore.{plan.target_project_id}.{plan.target_environment}"


class RestoreIntake:
    def __init__(self, store: EventStore, lanes: KeyValue, providers: Mapping[str, RestoreProvider]) -> None:
        self._restores = Repository(store, fold_restore, finished=lambda s: s.terminal)
        self._backups = Repository(store, fold, finished=lambda s: s.terminal)
        self._lanes = lanes
        self._providers = providers

    async def on_command(self, msg: Msg) -> None:
        command = message_id(msg)
        try:
            intake = read_restore_command(msg.data, command)
        except ValueError as exc:
            raise PoisonMessage(f"unreadable restore command: {exc}") from exc
        source = intake.source or RequestSource(kind="nats", command_id=command)
        with consuming_span("restore-intake", None, backup_id=intake.restore_id):
            restore, _ = await self._restores.load(intake.restore_id)
            if restore.exists:
                return  # a re-sent command: decided before
            outcome: RestorePlan | list[Problem] = intake.problems
            if intake.spec is not None:
                backup, _ = await self._backups.load(intake.spec.backup_id)
                restorers = {name: provider.restores for name, provider in self._providers.items()}
                outcome = plan_restore(intake.restore_id, intake.spec, backup, restorers)
                if isinstance(outcome, RestorePlan) and outcome.purpose == "restore":  # scratch targets need none
                    holder = await self._take_lane(lane_key(outcome), intake.restore_id)
                    if holder is not None:
                        outcome = [
                            Problem(
                                field="spec.target",
                                message=f"restore {holder} into {outcome.target_project_id}/"
                                f"{outcome.target_environment} is still running: one restore per target at a time",
                                type="busy",
                            )
                        ]
            spec = intake.spec
            result = await self._restores.record(
                intake.restore_id,
                Causation(command, correlation_id=command),
                lambda s: domain.decide_intake(s, spec, source, outcome),
            )
            for recorded in result.appended:
                log.info("%s %s", recorded.envelope.type, intake.restore_id, extra={"backup_id": intake.restore_id})

    async def _take_lane(self, key: str, restore_id: str) -> str | None:
        """Hold the target's lane for ``restore_id``: None once held, else the active restore holding it. A lane
        whose holder has ended is taken over (nothing deletes a lane: a crash cannot leave one held)."""
        try:
            await self._lanes.create(key, restore_id.encode())
            return None
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._lanes.get(key)
        except KeyNotFoundError as exc:  # deleted meanwhile: try again later
            raise RetryLater("restore lane changed", delay=0.2) from exc
        holder = (entry.value or b"").decode()
        if holder == restore_id:
            return None
        state, _ = await self._restores.load(holder)
        if state.exists and not state.terminal:
            return holder
        try:
            await self._lanes.update(key, restore_id.encode(), last=entry.revision)
        except KeyWrongLastSequenceError as exc:
            raise RetryLater("restore lane taken concurrently", delay=0.2) from exc
        return None


class RestoreWorker:
    """Runs admitted restores (see the module). ``providers``: the restore providers by provider name."""

    def __init__(
        self,
        store: EventStore,
        providers: Mapping[str, RestoreProvider],
        background: LeasedWork,
        *,
        poll_interval: float,
        max_concurrent: int,
        deadline: timedelta,
    ) -> None:
        self._restores = Repository(store, fold_restore, finished=lambda s: s.terminal)
        self._providers = providers
        self._background = background
        self._poll = poll_interval
        self._slots = asyncio.Semaphore(max_concurrent)
        self._deadline = deadline

    async def record(
        self, restore_id: str, causation: Causation, decide: Callable[[RestoreState], Sequence[DomainEvent]]
    ) -> RestoreState:
        return (await self._restores.record(restore_id, causation, decide)).state

    async def on_event(self, msg: Msg) -> None:
        admitted = self._restores.store.delivered(msg)
        if admitted.envelope.type != RestoreAdmitted.event_type:
            return
        restore_id = admitted.envelope.backup_id
        state, loaded = await self._restores.load(restore_id)
        origin = loaded.origin
        causation = Causation(str(origin.id) if origin else None)
        if state.terminal:
            await self._expire_scratch(restore_id, state, causation)
            return
        if state.plan is None:
            return
        key = f"restore.{restore_id}"
        late = domain.overdue(state, datetime.now(UTC), self._deadline)
        if late is not None:  # whoever runs it learns at its next record (OperationAborted); here it stops now
            await self._background.stop(key)
            await self._fail_all(restore_id, causation, late)
            return
        if self._background.running(key):
            raise RetryLater(f"restore {restore_id} runs in this process", delay=self._poll)
        if self._slots.locked():
            raise RetryLater("waiting for a restore slot", delay=self._poll)

        async def run() -> None:
            async with self._slots:
                try:
                    await self.run(restore_id, causation)
                except* (TransientProviderError, EventingError) as paused:
                    # the lease is given up; the next poll starts it again where the events say it stands
                    why = "; ".join(redact(str(exc)) for exc in paused.exceptions)
                    log.warning("restore %s paused: %s", restore_id, why, extra={"backup_id": restore_id})
                except* Exception as broken:  # a defect: fail the restore with it rather than retry it forever
                    log.error("restore %s failed", restore_id, exc_info=broken, extra={"backup_id": restore_id})
                    why = "; ".join(repr(exc) for exc in broken.exceptions)
                    await self._fail_all(restore_id, causation, f"internal error in restorer: {redact(why)}")

        holder = await self._background.start(key, run)
        raise RetryLater(f"restore {restore_id} runs in {holder or 'this process'}", delay=self._poll)

    async def _expire_scratch(self, restore_id: str, state: RestoreState, causation: Causation) -> None:
        """A failed verification keeps its scratch targets for inspection ``keepFailedHours``, then removes them:
        its delivery comes back until then (a durable timer), and is acknowledged once they are gone."""
        until = domain.scratch_kept_until(state)
        if until is None or state.plan is None:
            return
        wait = (until - datetime.now(UTC)).total_seconds()
        if wait > 0:
            raise RetryLater(
                f"scratch of the failed verification {restore_id} kept until {until}", delay=min(wait, 3600)
            )
        provider = self._providers.get(state.plan.provider)
        if provider is None:
            return
        try:
            removed = await provider.remove_scratch(restore_id, state.plan)
        except TransientProviderError as exc:
            raise RetryLater(redact(str(exc)), delay=self._poll) from exc
        await self.record(restore_id, causation, lambda s: domain.record_scratch_removed(s, removed))

    async def on_dead_letter(self, msg: Msg, reason: str) -> None:
        try:
            restore_id = self._restores.store.delivered(msg).envelope.backup_id
        except EventingError:
            return
        await self._fail_all(restore_id, Causation(None), f"internal error in restorer: {redact(reason)}")

    async def run(self, restore_id: str, causation: Causation) -> None:
        """Carry the restore as far as it goes: validate, both branches at once, verify, end."""
        state, _ = await self._restores.load(restore_id)
        plan = state.plan
        if state.terminal or plan is None:
            return
        provider = self._providers.get(plan.provider)
        if provider is None:
            await self._fail_all(restore_id, causation, "the restorer has no restore provider for this backup")
            return
        if state.state == "Validating":
            problems, checks = await provider.validate(restore_id, plan)
            state = await self.record(restore_id, causation, lambda s: domain.record_validation(s, problems, checks))
            if state.terminal:
                log.info("restore %s rejected: %s", restore_id, "; ".join(problems), extra={"backup_id": restore_id})
                return
        try:
            async with asyncio.TaskGroup() as group:
                if plan.database is not None and not state.database.ended:
                    group.create_task(self._database(restore_id, causation, provider))
                if plan.document_library is not None and not state.document_library.ended:
                    group.create_task(self._library(restore_id, causation, provider))
        except* _BranchFailed:
            pass  # recorded; the sibling branch was stopped
        state = await self.record(restore_id, causation, domain.decide_outcome)
        if state.terminal:
            return
        if state.state == "Verifying":
            await self._verify(restore_id, causation, provider, plan)

    async def _fail_all(self, restore_id: str, causation: Causation, reason: str) -> None:
        await self.record(
            restore_id,
            causation,
            lambda s: [
                *domain.record_branch_failure(s, "database", reason),
                *domain.record_branch_failure(s, "document_library", reason),
            ],
        )
        await self.record(restore_id, causation, domain.decide_outcome)

    async def _database(self, restore_id: str, causation: Causation, provider: RestoreProvider) -> None:
        state, _ = await self._restores.load(restore_id)
        assert state.plan is not None and state.plan.database is not None
        plan = state.plan.database
        target = f"{plan.target_instance}/{plan.target_database}"
        started = DatabaseRestoreStarted(operation_id=f"lc2-restore-{restore_id}", target=target)
        await self.record(restore_id, causation, lambda s: domain.record_started(s, started))

        async def progress(done: int, done_bytes: int) -> None:
            after = await self.record(
                restore_id, causation, lambda s: domain.record_progress(s, "database", done, done_bytes)
            )
            _still_running(after)

        try:
            read = await provider.restore_database(restore_id, plan, progress)
        except OperationAborted:
            return
        except PermanentProviderError as exc:
            await self._branch_failed(restore_id, causation, "database", redact(str(exc)))
        completed = DatabaseRestoreCompleted(target=target, bytes_read=read)
        await self.record(restore_id, causation, lambda s: domain.record_completed(s, completed))

    async def _library(self, restore_id: str, causation: Causation, provider: RestoreProvider) -> None:
        state, _ = await self._restores.load(restore_id)
        assert state.plan is not None and state.plan.document_library is not None
        plan = state.plan.document_library
        started = DocumentLibraryRestoreStarted(
            source=plan.source_location,
            destination=plan.target_location,
            objects_total=plan.objects,
            bytes_total=plan.bytes,
        )
        await self.record(restore_id, causation, lambda s: domain.record_started(s, started))

        async def progress(done: int, done_bytes: int) -> None:
            after = await self.record(
                restore_id, causation, lambda s: domain.record_progress(s, "document_library", done, done_bytes)
            )
            _still_running(after)

        aborted = False
        try:
            restored = await provider.restore_document_library(restore_id, plan, progress)
        except* OperationAborted:
            aborted = True  # the restore ended elsewhere: nothing more to record
        except* PermanentProviderError as group:
            reason = "; ".join(redact(str(exc)) for exc in group.exceptions)
            await self._branch_failed(restore_id, causation, "document_library", reason)
        if aborted:
            return
        completed = DocumentLibraryRestoreCompleted(
            objects=restored.objects, bytes=restored.bytes, objects_copied=restored.copied
        )
        await self.record(restore_id, causation, lambda s: domain.record_completed(s, completed))

    async def _branch_failed(
        self, restore_id: str, causation: Causation, branch: domain.Branch, reason: str
    ) -> NoReturn:
        log.warning("restore %s: %s branch failed: %s", restore_id, branch, reason, extra={"backup_id": restore_id})
        await self.record(restore_id, causation, lambda s: domain.record_branch_failure(s, branch, reason))
        raise _BranchFailed(reason)

    async def _verify(
        self, restore_id: str, causation: Causation, provider: RestoreProvider, plan: RestorePlan
    ) -> None:
        state, _ = await self._restores.load(restore_id)
        if state.verification is None:
            verdict = await provider.verify(restore_id, plan)
            state = await self.record(
                restore_id,
                causation,
                lambda s: domain.record_verdict(s, verdict.summary, verdict.findings, verdict.checks),
            )
            body = json.dumps(
                {
                    "restoreId": restore_id,
                    "backupId": plan.backup_id,
                    "passed": not verdict.findings,
                    "summary": verdict.summary.model_dump(by_alias=True),
                    "checks": verdict.checks,
                    "findings": verdict.findings,
                },
                indent=2,
            ).encode()
            await provider.write_verdict(restore_id, plan, body)
        assert state.verification is not None
        if state.verification.passed and state.scratch_removed is None:
            removed = await provider.remove_scratch(restore_id, plan)
            await self.record(restore_id, causation, lambda s: domain.record_scratch_removed(s, removed))
        await self.record(restore_id, causation, domain.decide_outcome)


def _still_running(state: RestoreState) -> None:
    """Stop a provider's long work when its restore has ended elsewhere (past its deadline, failed by a sibling)."""
    if state.terminal:
        raise OperationAborted(f"restore {state.restore_id} is {state.state}")


class _BranchFailed(Exception):
    """A branch recorded its failure: the other one is stopped (the restore fails as a whole)."""


__all__ = ["RestoreIntake", "RestoreWorker"]
