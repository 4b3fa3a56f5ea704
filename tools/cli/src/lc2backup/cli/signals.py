"""SIGINT and SIGTERM as one exception, so ``dev up`` and the demo unwind through ``finally`` and stop in order.

The first signal raises ``Stop`` in the main thread wherever it is (starting a server, seeding, waiting);
later ones are ignored while the stop runs, so a second Ctrl-C cannot cut the shutdown in half. Should the
process die anyway, its servers and services follow it (they carry ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop(BaseException):
    """A stop was requested by a signal (a BaseException, like KeyboardInterrupt: no ``except Exception`` eats it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
