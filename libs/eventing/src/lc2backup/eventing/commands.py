"""What names a command on the command stream when the command itself names nothing."""

from __future__ import annotations

from collections.abc import Mapping

from nats.aio.msg import Msg


def command_id(headers: Mapping[str, str] | None, stream: str, sequence: int) -> str:
    """A command's ``Nats-Msg-Id``, else its place in the stream."""
    if headers and "Nats-Msg-Id" in headers:
        return headers["Nats-Msg-Id"]
    return f"{stream}:{sequence}"


def message_id(msg: Msg) -> str:
    meta = msg.metadata
    return command_id(msg.headers, meta.stream, int(meta.sequence.stream))
