"""The domain's error tree: bytes or a payload that are not an event this build can read.

Raised by the pure codec in ``lc2backup.domain.wire``. ``lc2backup.eventing`` reads messages off NATS and
translates these, at the one place it decodes them (``read_event``), into its own ``UnreadableMessage``.

WireError (ValueError)
 ├── DecodeError          not a valid envelope, or a payload that does not validate against its type
 └── UnknownEventType     an envelope whose type (or schema version) this build cannot read
"""

from __future__ import annotations


class WireError(ValueError):
    """Base of every error raised while decoding an event."""


class DecodeError(WireError):
    """The bytes are not a valid envelope, or the payload does not validate against its event type."""


class UnknownEventType(WireError):
    """The envelope names an event type (or schema version) this build cannot read."""
