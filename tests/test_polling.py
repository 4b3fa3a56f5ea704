"""The shared polling helper: it returns what the probe found, and a timeout names the probe's last failure."""

from __future__ import annotations

import pytest

from tests.polling import eventually


async def test_returns_the_first_truthy_result_of_a_probe_that_stops_failing() -> None:
    calls: list[int] = []

    async def probe() -> int:
        calls.append(1)
        assert len(calls) >= 3, f"only {len(calls)} calls"
        return len(calls)

    assert await eventually(probe, timeout=5, interval=0.001) == 3


async def test_a_timeout_surfaces_the_last_assertion_error_and_the_context() -> None:
    seen: list[int] = []

    def probe() -> bool:
        seen.append(len(seen))
        raise AssertionError(f"state was {len(seen)}")

    with pytest.raises(AssertionError) as failed:
        await eventually(probe, timeout=0.05, interval=0.001, what="state 0", context=lambda: "service logs")
    message = str(failed.value)
    assert "state 0 not reached" in message and f"state was {len(seen)}" in message and "service logs" in message
    assert isinstance(failed.value.__cause__, AssertionError)  # chained: pytest prints the probe's failure too


async def test_a_falsy_result_is_reported_and_other_errors_fail_at_once() -> None:
    with pytest.raises(AssertionError, match=r"last value: \[\]"):
        await eventually(list, timeout=0.02, interval=0.001)
    with pytest.raises(ZeroDivisionError):
        await eventually(lambda: 1 / 0, timeout=5)
    assert await eventually(lambda: 1 / 1, timeout=1, tolerate=(ZeroDivisionError,)) == 1.0
