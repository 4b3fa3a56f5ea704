"""Named step boundaries of the event store and the consumer runner, for test-only fault injection.

``EventStore`` and ``ConsumerRunner`` call their ``at_step`` hook with the name of each boundary just before
it: ``before-append:<EventType>`` / ``after-append:<EventType>`` and ``ack:<durable>`` / ``nak:<durable>``. The
service scaffold passes ``lc2backup.runtime.crash_point`` (inert unless ``LC2_CRASH_AT`` arms a point), so
eventing itself knows nothing about crashing a process; the default does nothing.
"""

from __future__ import annotations

from collections.abc import Callable

StepHook = Callable[[str], None]


def no_step(name: str) -> None:
    """The default ``StepHook``: nothing."""
