"""When the ``dev up`` supervisor restarts a crashed service, and what ``dev status`` says about it.

A service that exits is restarted after a delay that doubles with each crash (1 s, 2 s, 4 s, … capped at
``BACKOFF_CAP``; the first delay is ``LC2_DEV_RESTART_DELAY_SECONDS``, 1 s by default), so a service that cannot start does not spin, yet one that crashed once is back at once.
A service that then runs for ``HEALTHY_AFTER`` seconds is healthy again: its next crash starts from the
first delay. There is no last restart: a long-running stack never leaves a service down for good.

Pure bookkeeping over the times it is given (``time.monotonic()`` for due times, wall time for display);
the supervisor does the waiting and the spawning.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

BACKOFF_FIRST = 1.0
RESTART_DELAY = "LC2_DEV_RESTART_DELAY_SECONDS"  # the first delay, in the environment of ``dev up``
BACKOFF_CAP = 60.0
HEALTHY_AFTER = 300.0


def backoff(crashes: int, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> float:
    """The delay before restarting after the ``crashes``-th crash in a row (1-based)."""
    return min(cap, first * float(2 ** max(crashes - 1, 0)))


def describe_exit(code: int | None) -> str:
    """``exit 1``, ``killed by SIGKILL``, or ``exit unknown`` (negative codes are signals, as Popen reports)."""
    if code is None:
        return "exit unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


@dataclass
class ServiceHealth:
    """One service's crash history in this supervisor: running, or down until ``due``."""

    started_at: float  # monotonic: when the current process was (re)started
    crashes: int = 0  # in a row, since the service was last healthy
    restarts: int = 0  # in total, for status
    last_exit: str | None = None
    last_exit_at: datetime | None = None
    last_error: str | None = None  # why the last restart attempt failed, if it did
    due: float | None = None  # monotonic: when to try again; None while it runs
    first_delay: float = BACKOFF_FIRST  # the delay after a first crash; it doubles with each crash in a row

    @property
    def down(self) -> bool:
        return self.due is not None

    def exited(self, now: float, code: int | None, wall: datetime | None = None) -> float:
        """The process exited: returns the delay before the restart."""
        if now - self.started_at >= HEALTHY_AFTER:
            self.crashes = 0
        self.crashes += 1
        self.last_exit = describe_exit(code)
        self.last_exit_at = wall or datetime.now(UTC)
        delay = backoff(self.crashes, self.first_delay)
        self.due = now + delay
        return delay

    def restarted(self, now: float) -> None:
        self.restarts += 1
        self.started_at = now
        self.due = None
        self.last_error = None

    def restart_failed(self, now: float, reason: str) -> float:
        """A restart attempt did not come up: counts as another crash."""
        self.last_error = reason
        self.crashes += 1
        self.restarts += 1
        delay = backoff(self.crashes, self.first_delay)
        self.due = now + delay
        return delay

    def describe(self, now: float, wall: datetime | None = None) -> dict[str, Any]:
        """What ``stack.json`` records for ``dev status`` (times as ISO 8601, UTC)."""
        wall = wall or datetime.now(UTC)
        doc: dict[str, Any] = {"state": "down" if self.down else "running", "restarts": self.restarts}
        if self.last_exit is not None:
            doc["lastExit"] = self.last_exit
            doc["lastExitAt"] = self.last_exit_at.isoformat() if self.last_exit_at else None
        if self.due is not None:
            doc["nextRestartAt"] = (wall + timedelta(seconds=max(self.due - now, 0.0))).isoformat()
        if self.last_error:
            doc["lastError"] = self.last_error[-500:]
        return doc
