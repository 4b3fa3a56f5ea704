"""Command intake: ``lc2.backup.cmd.request`` -> validate -> append BackupRequested / BackupRejected.

Unreadable bytes (not UTF-8, not JSON, too large) cannot name a backup, so they go to the dead-letter
stream with the reason. Everything readable ends as an event on the backup's own subject, appended with
expected sequence 0: a re-sent command finds the subject taken and decides nothing.
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg

from lc2backup.crd_gateway.domain import decide_intake
from lc2backup.domain import CommandUnreadable, Intake, fold, read_command
from lc2backup.eventing import Causation, EventStore, PoisonMessage, Repository, consuming_span

log = logging.getLogger(__name__)


def message_id(msg: Msg) -> str:
    headers = msg.headers or {}
    if "Nats-Msg-Id" in headers:
        return headers["Nats-Msg-Id"]
    meta = msg.metadata
    return f"{meta.stream}:{meta.sequence.stream}"


class IntakeHandler:
    def __init__(self, store: EventStore) -> None:
        self._backups = Repository(store, fold)

    async def submit(self, intake: Intake) -> None:
        command_id = intake.source.command_id or intake.backup_id
        result = await self._backups.record(
            intake.backup_id, Causation(command_id, correlation_id=command_id), lambda s: decide_intake(s, intake)
        )
        for recorded in result.appended:
            log.info("%s %s", recorded.envelope.type, intake.backup_id, extra={"backup_id": intake.backup_id})

    async def on_command(self, msg: Msg) -> None:
        try:
            intake = read_command(msg.data, message_id(msg))
        except CommandUnreadable as exc:
            raise PoisonMessage(f"unreadable command: {exc}") from exc
        with consuming_span("intake", None, backup_id=intake.backup_id):
            await self.submit(intake)
