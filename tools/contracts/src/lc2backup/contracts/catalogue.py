"""Who sends and who receives what: the table behind asyncapi.yaml's operations and each event's producer.

The event types each service appends and each of its consumers receives come from the one routing
declaration, ``lc2backup.eventing.permissions.SERVICES`` (which the grants and the services' consumer filters
use too), so a change there shows up as contract drift; the summaries are written here. A test checks that
every event type has exactly one producer here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lc2backup.domain.events import (
    EVENT_TYPES,
    RESTORE_EVENT_TYPES,
    BackupAdmitted,
    BackupFailed,
    BackupRejected,
    BackupRequested,
    RestoreAdmitted,
    RestoreRejected,
    RestoreRequested,
)
from lc2backup.eventing.permissions import SERVICES
from lc2backup.eventing.topology import DAY, Topology

Channel = Literal["commands", "restoreCommands", "events", "deadLetters"]
Action = Literal["send", "receive"]

COMMAND = "RequestBackup"
RESTORE_COMMAND = "RequestRestore"
DEAD_LETTER = "DeadLetter"
ALL_EVENTS: tuple[str, ...] = tuple(cls.event_type for cls in EVENT_TYPES)
# Services whose consumer runner dead-letters poison messages (the archiver reads the stream directly).
DEAD_LETTERING: tuple[str, ...] = tuple(name for name, access in SERVICES.items() if access.dead_letters)


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


def _events_consumer(service: str, durable: str) -> str:
    types = SERVICES[service].received_types(durable)
    filters = ", ".join(f"`lc2.backup.evt.*.{t}`" for t in types) if types else "`lc2.backup.evt.>`"
    return f"Durable pull consumer `{durable}` on LC2_BACKUP_EVENTS (filter {filters}, explicit ack)."


def _receives(service: str, durable: str) -> tuple[str, ...]:
    """What ``durable`` receives, in the order of ``EVENT_TYPES``; every event when it has no filter."""
    types = SERVICES[service].received_types(durable)
    return tuple(name for name in ALL_EVENTS if not types or name in types)


OPENS = (BackupRequested.event_type, BackupRejected.event_type)  # crd-gateway's intake; the rest: admission
# The restorer's intake opens a restore (its own aggregate); its worker records the rest, and rejects a restore
# whose stores do not match the log (so RestoreRejected is sent by both).
RESTORE_OPENS = (RestoreRequested.event_type, RestoreRejected.event_type, RestoreAdmitted.event_type)
RESTORE_WORK = (RestoreRejected.event_type,) + tuple(
    cls.event_type for cls in RESTORE_EVENT_TYPES if cls.event_type not in RESTORE_OPENS
)


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
        "users",
        "send",
        "restoreCommands",
        (RESTORE_COMMAND,),
        "Users, scripts and the CLI request a restore or a verification of a Succeeded backup",
        "Publish with JetStream; the restore id is `restoreId`, else derived from `requestId`, else from "
        "`Nats-Msg-Id`: a re-sent command never makes two restores.",
    ),
    Operation(
        "archiver",
        "send",
        "restoreCommands",
        (RESTORE_COMMAND,),
        "The projection API's POST /api/v1/restores and POST /api/v1/backups/{backupId}/verify publish the same "
        "command",
        "After the tenant checks (the backup's project and the target's); sets `Nats-Msg-Id: "
        "api:restore:<restoreId>` and `restoreId` (derived from the Idempotency-Key when there is one).",
    ),
    Operation(
        "crd-gateway",
        "send",
        "restoreCommands",
        (RESTORE_COMMAND,),
        "crd-gateway requests the restore of each RestoreRequest CR (when Kubernetes is enabled)",
        "Once per CR, while its restore has no event yet: `restoreId` is derived from the CR's uid, `source` names "
        "the CR (`kind: kubernetes`, namespace, name, uid, generation), `Nats-Msg-Id: k8s:restore:<uid>`.",
    ),
    Operation(
        "crd-gateway",
        "receive",
        "commands",
        (COMMAND,),
        "crd-gateway validates every command",
        "Durable pull consumer `crd-gateway-intake` on LC2_BACKUP_COMMANDS (work queue). Readable commands end as "
        f"{' or '.join(OPENS)} on the backup's subject; unreadable bytes are dead-lettered.",
    ),
    Operation(
        "crd-gateway",
        "send",
        "events",
        OPENS,
        "crd-gateway opens a backup's history",
        "Appended with `Nats-Expected-Last-Subject-Sequence: 0`: a re-sent command finds the subject taken.",
    ),
    Operation(
        "crd-gateway",
        "receive",
        "events",
        _receives("crd-gateway", "crd-gateway-admission"),
        "crd-gateway admits one backup per project+environment at a time",
        _events_consumer("crd-gateway", "crd-gateway-admission")
        + " Lanes (the active backup and its queue) live in the KV bucket LC2_BACKUP_LANES.",
        purpose="ForAdmission",
    ),
    Operation(
        "crd-gateway",
        "send",
        "events",
        tuple(name for name in SERVICES["crd-gateway"].appended_types if name not in OPENS),
        "crd-gateway queues a backup behind the active one, and admits it when its turn comes",
        purpose="ForAdmission",
    ),
    Operation(
        "crd-gateway",
        "receive",
        "events",
        _receives("crd-gateway", "crd-gateway-status"),
        "crd-gateway projects every event onto its BackupRequest's or RestoreRequest's status (when Kubernetes is"
        " enabled)",
        _events_consumer("crd-gateway", "crd-gateway-status"),
        purpose="ForStatus",
    ),
    Operation(
        "db-export",
        "receive",
        "events",
        _receives("db-export", "db-export"),
        "db-export runs the database branch",
        _events_consumer("db-export", "db-export")
        + f" The delivery of {BackupAdmitted.event_type} is nak'ed with a delay while a managed operation runs: it is the poll.",
    ),
    Operation(
        "db-export",
        "send",
        "events",
        SERVICES["db-export"].appended_types,
        "db-export records the database branch",
    ),
    Operation(
        "doclib-transfer",
        "receive",
        "events",
        _receives("doclib-transfer", "doclib-transfer"),
        "doclib-transfer runs the document-library branch",
        _events_consumer("doclib-transfer", "doclib-transfer")
        + f" The delivery of {BackupAdmitted.event_type} is nak'ed with a delay while the transfer runs: it is the poll.",
    ),
    Operation(
        "doclib-transfer",
        "send",
        "events",
        SERVICES["doclib-transfer"].appended_types,
        "doclib-transfer records the document-library branch",
    ),
    Operation(
        "metadata",
        "receive",
        "events",
        _receives("metadata", "metadata"),
        "metadata completes or fails the backup once both branches have ended",
        _events_consumer("metadata", "metadata"),
    ),
    Operation(
        "metadata",
        "send",
        "events",
        SERVICES["metadata"].appended_types,
        "metadata writes metadata.json, then ends the backup",
        "When one branch fails, the branch still running is cancelled first (its service stops it), then"
        f" {BackupFailed.event_type} lists what the backup may have left behind.",
    ),
    Operation(
        "restorer",
        "receive",
        "restoreCommands",
        (RESTORE_COMMAND,),
        "restorer validates every restore command and plans it from the backup's log",
        f"Durable pull consumer `restorer-intake` on {Topology().commands_stream} (filter "
        f"`{Topology().restore_subject}`). Readable commands end as {RestoreAdmitted.event_type} or "
        f"{RestoreRejected.event_type} on the restore's own subject (one restore per target project+environment at a time: lanes in the KV bucket "
        f"{Topology().lanes_bucket}); unreadable bytes are dead-lettered.",
    ),
    Operation(
        "restorer",
        "send",
        "events",
        RESTORE_OPENS,
        "restorer opens a restore's history: requested (with its plan) and admitted, or rejected",
        "Appended with `Nats-Expected-Last-Subject-Sequence: 0` on `lc2.backup.evt.<restoreId>.*`: a re-sent "
        "command finds the subject taken.",
        purpose="ForIntake",
    ),
    Operation(
        "restorer",
        "receive",
        "events",
        _receives("restorer", "restorer"),
        "restorer runs admitted restores and verifications",
        _events_consumer("restorer", "restorer")
        + f" The delivery of {RestoreAdmitted.event_type} is nak'ed with a delay while the restore runs (under a "
        f"lease in the KV bucket {Topology().leases_bucket}): it is the poll.",
    ),
    Operation(
        "restorer",
        "send",
        "events",
        RESTORE_WORK,
        "restorer records a restore: validated, each branch, the verification's verdict, the end",
        f"{RestoreRejected.event_type} here: metadata.json or the targets do not match what intake planned "
        "(nothing was written).",
        purpose="ForWork",
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
    """The services that append ``event_type`` (each once, though it may send it in two operations)."""
    return list(
        dict.fromkeys(
            op.actor
            for op in OPERATIONS
            if op.action == "send" and op.channel == "events" and event_type in op.messages
        )
    )
