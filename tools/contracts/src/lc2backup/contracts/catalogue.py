"""Who sends and who receives what: the table behind asyncapi.yaml's operations and each event's producer.

Declared by hand from the services' handlers (ARCHITECTURE.md's table), except metadata's triggers, which
are taken from its handler so that a change there shows up as contract drift. A test checks that every
event type has exactly one producer here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lc2backup.domain.events import (
    EVENT_TYPES,
    BackupAdmitted,
    BackupFailed,
    BackupMetadataWritten,
    BackupQueued,
    BackupRejected,
    BackupRequested,
    BackupSucceeded,
    DatabaseBranchCancelled,
    DatabaseBranchFailed,
    DatabaseExportCompleted,
    DatabaseExportProgressed,
    DatabaseExportStarted,
    DatabaseSnapshotCompleted,
    DatabaseSnapshotStarted,
    DocumentLibraryTransferCancelled,
    DocumentLibraryTransferCompleted,
    DocumentLibraryTransferFailed,
    DocumentLibraryTransferProgressed,
    DocumentLibraryTransferStarted,
)
from lc2backup.eventing.topology import DAY, Topology
from lc2backup.metadata.handlers import TRIGGERS

Channel = Literal["commands", "events", "deadLetters"]
Action = Literal["send", "receive"]

COMMAND = "RequestBackup"
DEAD_LETTER = "DeadLetter"
ALL_EVENTS: tuple[str, ...] = tuple(cls.event_type for cls in EVENT_TYPES)
# Services whose consumer runner dead-letters poison messages (the archiver reads the stream directly).
DEAD_LETTERING: tuple[str, ...] = ("crd-gateway", "db-export", "doclib-transfer", "metadata")


@dataclass(frozen=True)
class Operation:
    actor: str
    action: Action
    channel: Channel
    messages: tuple[str, ...]
    summary: str
    description: str = ""
    purpose: str = ""  # tells apart two operations of one actor on one channel

    @property
    def key(self) -> str:
        """``crdGatewayReceivesCommands``: unique, stable, and says who does what."""
        words = self.actor.split("-")
        actor = words[0] + "".join(w.title() for w in words[1:])
        return f"{actor}{self.action.title()}s{self.channel[0].upper()}{self.channel[1:]}{self.purpose}"


def _events_consumer(durable: str, *types: str) -> str:
    filters = ", ".join(f"`lc2.backup.evt.*.{t}`" for t in types) if types else "`lc2.backup.evt.>`"
    return f"Durable pull consumer `{durable}` on LC2_BACKUP_EVENTS (filter {filters}, explicit ack)."


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "users",
        "send",
        "commands",
        (COMMAND,),
        "Users, scripts and the CLI request a backup",
        "Publish with JetStream (`Nats-Msg-Id` makes a re-sent command a duplicate within the stream's window).",
    ),
    Operation(
        "archiver",
        "send",
        "commands",
        (COMMAND,),
        "The projection API's POST /api/v1/backups publishes the same command",
        "Sets `Nats-Msg-Id: api:<backupId>`, `backupId`, `requestId` (the Idempotency-Key) and `source.kind: api`.",
    ),
    Operation(
        "crd-gateway",
        "receive",
        "commands",
        (COMMAND,),
        "crd-gateway validates every command",
        "Durable pull consumer `crd-gateway-intake` on LC2_BACKUP_COMMANDS (work queue). Readable commands end as "
        "BackupRequested or BackupRejected on the backup's subject; unreadable bytes are dead-lettered.",
    ),
    Operation(
        "crd-gateway",
        "send",
        "events",
        (BackupRequested.event_type, BackupRejected.event_type),
        "crd-gateway opens a backup's history",
        "Appended with `Nats-Expected-Last-Subject-Sequence: 0`: a re-sent command finds the subject taken.",
    ),
    Operation(
        "crd-gateway",
        "receive",
        "events",
        (BackupRequested.event_type, BackupSucceeded.event_type, BackupFailed.event_type),
        "crd-gateway admits one backup per project+environment at a time",
        _events_consumer("crd-gateway-admission", "BackupRequested", "BackupSucceeded", "BackupFailed")
        + " Lanes (the active backup and its queue) live in the KV bucket LC2_BACKUP_LANES.",
        purpose="ForAdmission",
    ),
    Operation(
        "crd-gateway",
        "send",
        "events",
        (BackupQueued.event_type, BackupAdmitted.event_type),
        "crd-gateway queues a backup behind the active one, and admits it when its turn comes",
        purpose="ForAdmission",
    ),
    Operation(
        "crd-gateway",
        "receive",
        "events",
        ALL_EVENTS,
        "crd-gateway projects every event onto its BackupRequest's status (when Kubernetes is enabled)",
        _events_consumer("crd-gateway-status"),
        purpose="ForStatus",
    ),
    Operation(
        "db-export",
        "receive",
        "events",
        (BackupAdmitted.event_type,),
        "db-export runs the database branch",
        _events_consumer("db-export", "BackupAdmitted")
        + " The delivery of BackupAdmitted is nak'ed with a delay while a managed operation runs: it is the poll.",
    ),
    Operation(
        "db-export",
        "send",
        "events",
        tuple(
            cls.event_type
            for cls in (
                DatabaseSnapshotStarted,
                DatabaseSnapshotCompleted,
                DatabaseExportStarted,
                DatabaseExportProgressed,
                DatabaseExportCompleted,
                DatabaseBranchFailed,
            )
        ),
        "db-export records the database branch",
    ),
    Operation(
        "doclib-transfer",
        "receive",
        "events",
        (BackupAdmitted.event_type,),
        "doclib-transfer runs the document-library branch",
        _events_consumer("doclib-transfer", "BackupAdmitted")
        + " The delivery of BackupAdmitted is nak'ed with a delay while the transfer runs: it is the poll.",
    ),
    Operation(
        "doclib-transfer",
        "send",
        "events",
        tuple(
            cls.event_type
            for cls in (
                DocumentLibraryTransferStarted,
                DocumentLibraryTransferProgressed,
                DocumentLibraryTransferCompleted,
                DocumentLibraryTransferFailed,
            )
        ),
        "doclib-transfer records the document-library branch",
    ),
    Operation(
        "metadata",
        "receive",
        "events",
        tuple(name for name in ALL_EVENTS if name in TRIGGERS),
        "metadata completes or fails the backup once both branches have ended",
        _events_consumer("metadata", *TRIGGERS),
    ),
    Operation(
        "metadata",
        "send",
        "events",
        tuple(
            cls.event_type
            for cls in (
                BackupMetadataWritten,
                BackupSucceeded,
                DatabaseBranchCancelled,
                DocumentLibraryTransferCancelled,
                BackupFailed,
            )
        ),
        "metadata writes metadata.json, then ends the backup",
        "When one branch fails, the branch still running is cancelled first (its service stops it), then"
        " BackupFailed lists what the backup may have left behind.",
    ),
    Operation(
        "archiver",
        "receive",
        "events",
        ALL_EVENTS,
        "archiver projects every event into PostgreSQL",
        "No server-side consumer: batched Direct Get reads from the checkpoint stored with the projection, "
        "woken by a core subscription on `lc2.backup.evt.>`.",
    ),
    *(
        Operation(
            service,
            "send",
            "deadLetters",
            (DEAD_LETTER,),
            f"{service} dead-letters messages it cannot process",
            f"On subject `{Topology().dlq_subject(service)}`; the original message is then terminated.",
        )
        for service in DEAD_LETTERING
    ),
    Operation(
        "operators",
        "receive",
        "deadLetters",
        (DEAD_LETTER,),
        "Operators inspect dead letters",
        f"Nothing consumes them automatically; LC2_BACKUP_DLQ keeps them for {Topology().dlq_max_age / DAY:g} days.",
    ),
)


def producers(event_type: str) -> list[str]:
    return [
        op.actor for op in OPERATIONS if op.action == "send" and op.channel == "events" and event_type in op.messages
    ]
