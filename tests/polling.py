"""The one way the tests wait for something: poll a probe until it holds, and fail with why it did not.

A probe asserts what it waits for and returns a truthy value (often the thing it read); an ``AssertionError``
or a falsy return means "not yet". On timeout the failure names what was awaited, the probe's last assertion
error (chained, so pytest prints it in full) or last return value, and any context the caller supplies (the
services' logs). A bare "timed out" would hide the one fact needed to see what went wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

NOT_YET: tuple[type[BaseException], ...] = (AssertionError,)


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    what: str = ...,
    interval: float = ...,
    tolerate: tuple[type[BaseException], ...] = ...,
    context: Callable[[], str] | None = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str = ...,
    interval: float = ...,
    tolerate: tuple[type[BaseException], ...] = ...,
    context: Callable[[], str] | None = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    *,
    timeout: float,
    what: str = "condition",
    interval: float = 0.1,
    tolerate: tuple[type[BaseException], ...] = (),
    context: Callable[[], str] | None = None,
) -> Any:
    """Call ``probe`` (sync or async) until it returns something truthy without raising; return that.

    ``tolerate``: more exception types that mean "not yet" (a server that is down on purpose); any other
    exception fails at once. Raises ``AssertionError`` after ``timeout`` seconds, chained to the last error.
    """
    not_yet = (*NOT_YET, *tolerate)
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    attempts = 0
    while True:
        attempts += 1
        try:
            outcome = probe()
            result = await outcome if isinstance(outcome, Awaitable) else outcome
        except not_yet as exc:
            last_error, last_value = exc, None
        else:
            if result:
                return result
            last_error, last_value = None, result
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(interval)
    why = f"last error: {last_error!r}" if last_error is not None else f"last value: {last_value!r}"
    extra = f"\n{context()}" if context is not None else ""
    raise AssertionError(f"{what} not reached after {timeout}s ({attempts} attempts); {why}{extra}") from last_error
