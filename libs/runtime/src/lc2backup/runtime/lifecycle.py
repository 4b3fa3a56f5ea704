"""Process lifecycle: signals set a stop flag, owned tasks, ordered shutdown, non-zero exit on a crash.

``run(main)`` installs SIGTERM/SIGINT handlers that set ``stop``; ``main(stop)`` starts its loops as owned
tasks and returns after they have finished their in-flight work. A second signal cancels everything.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Main = Callable[[asyncio.Event], Awaitable[None]]


async def _run(main: Main) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.current_task()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("second %s: cancelling", sig.name)
            if task is not None:
                task.cancel()
            return
        log.info("%s received: stopping", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await main(stop)


def run(main: Main) -> None:
    try:
        asyncio.run(_run(main))
    except asyncio.CancelledError:
        sys.exit(130)
    except Exception:
        log.exception("service crashed")
        sys.exit(1)


class TaskGroupStopper:
    """Owns a service's long-running loops: if one of them fails, every other one is asked to stop."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._on_done)
        self._tasks.append(task)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s failed: %r; stopping the service", task.get_name(), exc, exc_info=exc)
            self.stop.set()

    async def wait(self) -> None:
        """Wait for every task; re-raise the first failure so the process exits non-zero."""
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
