"""Command intake: ``lc2.backup.cmd.request`` -> validate -> append BackupRequested / BackupRejected.

Unreadable bytes (not UTF-8, not JSON, too large) cannot name a backup, so they go to the dead-letter
stream with the reason. A readable command is parsed here, once (``parse_intake``: its shape, then its spec);
the decision receives the parsed spec. The intake parses every command, also the ones the API published after
validating them itself: the command stream is a boundary, and anyone allowed to publish on it (the
``requester`` NATS user, people and CI) can send any bytes, with any ``source``. Everything readable ends as an event on the backup's own subject, appended with
expected sequence 0: a re-sent command finds the subject taken and decides nothing.

Order: the commands of one project+environment are recorded in the order the command stream stored them
(``LaneOrder``), so their backups queue and run in the order they were submitted, by NATS or by the API
(which publishes into the same stream). Commands of different environments are handled concurrently.
"""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from lc2backup.crd_gateway.domain import decide_intake
from lc2backup.crd_gateway.ordering import LaneOrder
from lc2backup.domain import CommandUnreadable, Intake, Submission, fold, parse_intake, read_command
from lc2backup.eventing import (
    Causation,
    EventStore,
    PoisonMessage,
    Repository,
    StoredMessage,
    command_id,
    consuming_span,
    message_id,
)

log = logging.getLogger(__name__)


def lane_of_intake(intake: Intake) -> str | None:
    """The project+environment a command is about, as far as it can be read (it may still be rejected)."""
    spec: Any = intake.spec
    if not isinstance(spec, dict):
        return None
    project, environment = spec.get("projectId"), spec.get("environment")
    if not isinstance(project, str) or not isinstance(environment, str):
        return None
    return f"{project}.{environment}"


class IntakeHandler:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._backups = Repository(store, fold)
        self._order: LaneOrder | None = None

    def keep_order(self, order: LaneOrder) -> None:
        """Record the commands of one lane in command-stream order (``on_command`` only; see the module)."""
        self._order = order

    def read_stored(self, message: StoredMessage) -> Intake | None:
        """A command as stored in the command stream, read as ``on_command`` reads it; None if unreadable."""
        try:
            return read_command(
                message.data, command_id(message.headers, self._store.topology.commands_stream, message.sequence)
            )
        except CommandUnreadable:
            return None

    def lane_of_stored(self, message: StoredMessage) -> str | None:
        intake = self.read_stored(message)
        return None if intake is None else lane_of_intake(intake)

    async def recorded(self, message: StoredMessage) -> bool:
        """Has this stored command taken effect (its backup requested or rejected)?"""
        intake = self.read_stored(message)
        return intake is None or (await self._store.load(intake.backup_id)).version > 0

    async def submit(self, submission: Submission) -> None:
        command = submission.source.command_id or submission.backup_id
        backup_id = submission.backup_id
        result = await self._backups.record(
            backup_id, Causation(command, correlation_id=command), lambda s: decide_intake(s, submission)
        )
        for recorded in result.appended:
            log.info("%s %s", recorded.envelope.type, backup_id, extra={"backup_id": backup_id})

    async def on_command(self, msg: Msg) -> None:
        try:
            intake = read_command(msg.data, message_id(msg))
        except CommandUnreadable as exc:
            raise PoisonMessage(f"unreadable command: {exc}") from exc
        with consuming_span("intake", None, backup_id=intake.backup_id):
            lane = lane_of_intake(intake)
            submission = parse_intake(intake)
            if self._order is None or lane is None:
                await self.submit(submission)
                return
            async with self._order.turn(lane, int(msg.metadata.sequence.stream)):
                await self.submit(submission)
