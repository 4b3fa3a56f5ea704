"""asyncapi.yaml (AsyncAPI 3.0.0): the NATS subjects, their messages and headers, and who sends/receives what.

Payloads are not copied here: every message points (``$ref``) at the generated JSON Schema files next to this
document, so the two cannot disagree. Subjects, stream names and limits come from ``Topology``'s defaults.
"""

from __future__ import annotations

from typing import Any

from lc2backup.contracts.catalogue import (
    COMMAND,
    DEAD_LETTER,
    DEAD_LETTERING,
    OPERATIONS,
    RESTORE_COMMAND,
    producers,
)
from lc2backup.contracts.schemas import COMMAND_PATH, ENVELOPE_PATH, RESTORE_COMMAND_PATH, event_path
from lc2backup.domain.commands import MAX_COMMAND_BYTES
from lc2backup.domain.events import EVENT_TYPES
from lc2backup.domain.restoring import MAX_RESTORE_COMMAND_BYTES
from lc2backup.domain.wire import EVENT_ID_NAMESPACE, DomainEvent
from lc2backup.eventing import BACKUP_HEADER, TYPE_HEADER
from lc2backup.eventing.deadletters import MAX_BODY, REASON_HEADER
from lc2backup.eventing.topology import DAY, Topology

ASYNCAPI = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
TOP_LEVEL = ("asyncapi", "info", "defaultContentType", "servers", "channels", "operations", "components")
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

Doc = dict[str, Any]


def _description(t: Topology) -> str:
    return f"""\
The event log of LC2 Backup, an event-sourced backup service for Liferay environments.

Every event is published on `{t.event_subject("<backupId>", "<EventType>")}` in the stream {t.events_stream}
(deny delete and purge), so a backup's history, in order, is `{t.backup_subjects("<backupId>")}` — the only
source of truth — and a consumer can filter on the event types it acts on. A backup's state is a pure fold over
its subjects; the Kubernetes status, the PostgreSQL projection and the HTTP API are projections rebuilt by replay.

Every event is a JSON envelope (`{ENVELOPE_PATH}`) whose `data` is the payload named by `type` and
`schemaVersion` (`events/<kebab-case-type>.v<schemaVersion>.schema.json`). Old schema versions are upcast on read.

Append protocol (every writer):

- Decide from the fold of the backup's subjects, then publish with `Nats-Expected-Last-Subject-Sequence` set to
  the last stream sequence of those subjects the decision was made on (0 for a new backup) and
  `Nats-Expected-Last-Subject-Sequence-Subject: {t.backup_subjects("<backupId>")}`. If another writer appended
  meanwhile, JetStream refuses the message (error 10071): reload, decide again, retry.
- `Nats-Msg-Id` is the envelope id, a UUIDv5 of `<backupId>/<dedupe key>`
  (namespace {EVENT_ID_NAMESPACE}). The same decision always gets the same id, so an append
  retried within the duplicate window ({t.duplicate_window:g} s) is stored once. Events that repeat (progress
  reports) carry a counter in their dedupe key.
- `Nats-` headers belong to the server; own headers are prefixed `Lc2-`. A batch of events is appended one by
  one, each expecting the sequence of the one before.

A restore (or a verification) of a backup is its own aggregate on the same log: its events are published on
`{t.event_subject("<restoreId>", "<EventType>")}`, the envelope's `backupId` holding the restore id.

Commands arrive on `{t.request_subject}` (backups) and `{t.restore_subject}` (restores), both in the stream
{t.commands_stream} (a work queue). A message a service cannot process goes to `{t.dlq_subject("<service>")}`
(stream {t.dlq_stream}) with the reason in its headers.
"""


def _event_headers() -> Doc:
    return {
        "type": "object",
        "required": [
            "Nats-Msg-Id",
            "Nats-Expected-Last-Subject-Sequence",
            "Nats-Expected-Last-Subject-Sequence-Subject",
            TYPE_HEADER,
            BACKUP_HEADER,
        ],
        "properties": {
            "Nats-Msg-Id": {
                "type": "string",
                "format": "uuid",
                "description": "The envelope `id` (deterministic): JetStream drops a retried append as a duplicate.",
            },
            "Nats-Expected-Last-Subject-Sequence": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Optimistic concurrency: the backup's last sequence when the decision was made.",
            },
            "Nats-Expected-Last-Subject-Sequence-Subject": {
                "type": "string",
                "description": "The subjects that sequence is checked against: `lc2.backup.evt.<backupId>.*`.",
            },
            TYPE_HEADER: {"type": "string", "description": "The envelope `type`: consumers filter without decoding."},
            BACKUP_HEADER: {"type": "string", "description": "The envelope `backupId` (the subject's fourth token)."},
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT,
                "description": "W3C trace context of the producing span, when there is one.",
            },
        },
    }


def _command_headers() -> Doc:
    return {
        "type": "object",
        "properties": {
            "Nats-Msg-Id": {
                "type": "string",
                "description": "Duplicate detection, and the request id when the body has no backupId (restoreId) or "
                "requestId.",
            }
        },
    }


def _dead_letter_headers() -> Doc:
    def text(about: str) -> Doc:
        return {"type": "string", "description": about}

    def number(about: str) -> Doc:
        return {"type": "string", "pattern": "^[0-9]+$", "description": about}

    fields = {
        REASON_HEADER: text("Why the message was refused (printable, at most 1024 characters)."),
        "Lc2-Dlq-Service": text("The service that refused it."),
        "Lc2-Dlq-Consumer": text("Its durable consumer."),
        "Lc2-Dlq-Subject": text("The original subject: republish the body there to replay it."),
        "Lc2-Dlq-Stream": text("The original stream (empty for a core NATS message)."),
        "Lc2-Dlq-Sequence": number("The original stream sequence (0 for a core NATS message)."),
        "Lc2-Dlq-Deliveries": number("How many times it had been delivered."),
        "Lc2-Dlq-Original-Size": number("Size in bytes of the original body."),
    }
    optional = {
        "Lc2-Dlq-Truncated": {"const": "true", "description": f"Present when the body was cut at {MAX_BODY} bytes."},
        "Nats-Msg-Id": text("`dlq:<stream>:<sequence>:<consumer>` (when the sequence is known): recorded once."),
    }
    return {"type": "object", "required": list(fields), "properties": fields | optional}


def _event_message(cls: type[DomainEvent]) -> Doc:
    makers = ", ".join(producers(cls.event_type))
    return {
        "name": cls.event_type,
        "title": cls.event_type,
        "summary": f"{cls.event_type} (schema version {cls.schema_version}), appended by {makers}.",
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/EventHeaders"},
                {"type": "object", "properties": {TYPE_HEADER: {"const": cls.event_type}}},
            ]
        },
        "payload": {
            "allOf": [
                {"$ref": f"./{ENVELOPE_PATH}"},
                {
                    "type": "object",
                    "required": ["type", "schemaVersion", "data"],
                    "properties": {
                        "type": {"const": cls.event_type},
                        "schemaVersion": {"const": cls.schema_version},
                        "data": {"$ref": f"./{event_path(cls)}"},
                    },
                },
            ]
        },
    }


def _messages() -> Doc:
    messages = {cls.event_type: _event_message(cls) for cls in EVENT_TYPES}
    messages[COMMAND] = {
        "name": COMMAND,
        "title": "Request a backup",
        "summary": f"A RequestBackup command or a whole BackupRequest manifest, as JSON (at most {MAX_COMMAND_BYTES}"
        " bytes).",
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/CommandHeaders"},
        "payload": {"$ref": f"./{COMMAND_PATH}"},
    }
    messages[RESTORE_COMMAND] = {
        "name": RESTORE_COMMAND,
        "title": "Request a restore",
        "summary": f"A RequestRestore command, as JSON (at most {MAX_RESTORE_COMMAND_BYTES} bytes).",
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/CommandHeaders"},
        "payload": {"$ref": f"./{RESTORE_COMMAND_PATH}"},
    }
    messages[DEAD_LETTER] = {
        "name": DEAD_LETTER,
        "title": "Dead letter",
        "summary": "A message a service could not process, byte for byte, with the reason in its headers.",
        "contentType": "application/octet-stream",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": f"The original body, truncated past {MAX_BODY} bytes."},
    }
    return messages


def _channels(t: Topology) -> Doc:
    def refs(names: list[str]) -> Doc:
        return {name: {"$ref": f"#/components/messages/{name}"} for name in names}

    return {
        "commands": {
            "address": t.request_subject,
            "title": "Commands",
            "description": f"Stream {t.commands_stream}: a work queue, consumed once by crd-gateway.",
            "messages": refs([COMMAND]),
        },
        "restoreCommands": {
            "address": t.restore_subject,
            "title": "Restore commands",
            "description": f"Stream {t.commands_stream}: a work queue, consumed once by restorer.",
            "messages": refs([RESTORE_COMMAND]),
        },
        "events": {
            "address": t.event_subject("{backupId}", "{eventType}"),
            "title": "A backup's (or a restore's) event log",
            "description": f"Stream {t.events_stream}, at most {t.max_event_bytes} bytes per event; "
            f"all backups: `{t.all_events}`.",
            "parameters": {
                "backupId": {
                    "description": "The backup's id (a UUID), the envelope's `backupId`; for a restore's events, "
                    "the restore's id."
                },
                "eventType": {
                    "description": "The envelope's `type`.",
                    "enum": [cls.event_type for cls in EVENT_TYPES],
                },
            },
            "messages": refs([cls.event_type for cls in EVENT_TYPES]),
        },
        "deadLetters": {
            "address": t.dlq_subject("{service}"),
            "title": "Dead letters",
            "description": f"Stream {t.dlq_stream}, kept {t.dlq_max_age / DAY:g} days.",
            "parameters": {
                "service": {"description": "The service that refused the message.", "enum": list(DEAD_LETTERING)}
            },
            "messages": refs([DEAD_LETTER]),
        },
    }


def _operations() -> Doc:
    operations: Doc = {}
    for op in OPERATIONS:
        entry: Doc = {
            "action": op.action,
            "channel": {"$ref": f"#/channels/{op.channel}"},
            "messages": [{"$ref": f"#/channels/{op.channel}/messages/{name}"} for name in op.messages],
            "summary": op.summary,
            "tags": [{"name": op.actor}],
        }
        if op.description:
            entry["description"] = op.description
        operations[op.key] = entry
    return operations


def asyncapi_document() -> Doc:
    t = Topology()
    return {
        "asyncapi": ASYNCAPI,
        "info": {
            "title": "LC2 Backup events and commands",
            "version": DOCUMENT_VERSION,
            "description": _description(t),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "Placeholder: a local nats-server with JetStream, as `make up` starts it.",
            }
        },
        "channels": _channels(t),
        "operations": _operations(),
        "components": {
            "messages": _messages(),
            "schemas": {
                "CommandHeaders": _command_headers(),
                "DeadLetterHeaders": _dead_letter_headers(),
                "EventHeaders": _event_headers(),
            },
        },
    }
