"""The eventing error tree. Third-party (nats-py) errors are translated at one boundary, with the cause chained.

EventingError
 ├── UnreadableMessage        a stored or delivered message that is not an event of this build (poison:
 │                            dead-lettered); the domain's DecodeError / UnknownEventType is its cause
 ├── ConcurrencyError         the backup's subject moved on under us (reload, re-decide, retry)
 │    └── ConflictRetriesExhausted   still conflicting after the bounded number of attempts
 ├── HistoryGap               a kept fold no longer matches the backup's subject (load it in full)
 ├── AppendError              the append's outcome is unknown or the server refused it (retryable)
 ├── TopologyError            a stream or consumer could not be created or updated
 └── HandlerOutcome           raised by handlers to steer the consumer runner
      ├── RetryLater          nak with a delay: a transient failure, or a poll that is not done yet
      └── PoisonMessage       dead-letter with a reason and terminate: never retried
"""

from __future__ import annotations


class EventingError(Exception):
    """Base of every error raised by lc2backup.eventing."""


class UnreadableMessage(EventingError):
    """Not an event of this build: an invalid envelope or payload, an unknown type, or the wrong subject."""


class ConcurrencyError(EventingError):
    """``Nats-Expected-Last-Subject-Sequence`` did not match: someone appended first."""

    def __init__(self, subject: str, expected: int, detail: str = "") -> None:
        super().__init__(f"{subject}: expected last sequence {expected} is stale {detail}".strip())
        self.subject = subject
        self.expected = expected


class ConflictRetriesExhausted(ConcurrencyError):
    """Reload, re-decide and retry did not get an append through within the bound."""


class HistoryGap(EventingError):
    """The message a kept fold ended on is no longer where it was (deleted, or the stream was recreated)."""

    def __init__(self, subject: str, version: int, detail: str) -> None:
        super().__init__(f"{subject}: the message at sequence {version} a kept fold ended on {detail}")
        self.subject = subject
        self.version = version


class AppendError(EventingError):
    """The append failed for a reason other than a conflict; its outcome may be unknown."""


class TopologyError(EventingError):
    """A stream or consumer could not be created or brought to the configured shape."""


class HandlerOutcome(EventingError):
    """Base of the exceptions a handler raises to tell the runner what to do with the message."""


class RetryLater(HandlerOutcome):
    """Negatively acknowledge the message; it comes back after ``delay`` seconds."""

    def __init__(self, reason: str, delay: float = 1.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class PoisonMessage(HandlerOutcome):
    """The message can never be processed: record it in the dead-letter stream and terminate it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
