"""The dead-letter stream: a refused message is kept with the reason, so an operator can see and replay it."""

from __future__ import annotations

import logging

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from lc2backup.eventing.topology import Topology

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
REASON_HEADER = "Lc2-Dlq-Reason"


def _header_safe(value: str, limit: int = 1024) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value)
    return cleaned[:limit]


class DeadLetters:
    def __init__(self, js: JetStreamContext, topology: Topology, service: str) -> None:
        self._js = js
        self._topology = topology
        self._service = service

    async def record(self, msg: Msg, reason: str, *, consumer: str) -> None:
        """Store the original bytes (truncated past 256 KiB) and the reason; idempotent per message."""
        try:
            meta = msg.metadata
            stream, seq, deliveries = meta.stream, meta.sequence.stream, meta.num_delivered
        except Exception:  # a message without JetStream metadata (core publish)
            stream, seq, deliveries = "", 0, 1
        body = msg.data[:MAX_BODY]
        headers = {
            REASON_HEADER: _header_safe(reason),
            "Lc2-Dlq-Service": self._service,
            "Lc2-Dlq-Consumer": consumer,
            "Lc2-Dlq-Subject": _header_safe(msg.subject, 256),
            "Lc2-Dlq-Stream": stream,
            "Lc2-Dlq-Sequence": str(seq),
            "Lc2-Dlq-Deliveries": str(deliveries),
            "Lc2-Dlq-Original-Size": str(len(msg.data)),
        }
        if len(body) < len(msg.data):
            headers["Lc2-Dlq-Truncated"] = "true"
        if seq:
            headers["Nats-Msg-Id"] = f"dlq:{stream}:{seq}:{consumer}"
        await self._js.publish(
            self._topology.dlq_subject(self._service), body, stream=self._topology.dlq_stream, headers=headers
        )
        log.warning("dead-lettered %s seq=%s: %s", msg.subject, seq, reason)
