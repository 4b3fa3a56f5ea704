"""KeyedLocks: one holder per key, in the order tasks were started, and nothing kept once unused."""

from __future__ import annotations

import asyncio

from lc2backup.runtime import KeyedLocks


async def test_holders_of_one_key_take_turns_in_start_order_and_other_keys_run_alongside() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    inside: dict[str, int] = {"lane-a": 0, "lane-b": 0}
    most: dict[str, int] = {"lane-a": 0, "lane-b": 0}
    b_started = asyncio.Event()

    async def enter(key: str, name: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            order.append(name)
            if key == "lane-b":
                b_started.set()
            else:
                await b_started.wait()  # lane-b gets in while lane-a is held
            await asyncio.sleep(0.01)
            inside[key] -= 1

    tasks = [asyncio.create_task(enter("lane-a", f"a{i}")) for i in range(5)]
    tasks.append(asyncio.create_task(enter("lane-b", "b0")))
    await asyncio.sleep(0)  # every task has asked for its lock
    assert len(locks) == 2
    await asyncio.gather(*tasks)

    assert [n for n in order if n.startswith("a")] == ["a0", "a1", "a2", "a3", "a4"]
    assert most == {"lane-a": 1, "lane-b": 1}
    assert order.index("b0") < order.index("a1")  # not queued behind lane-a
    assert len(locks) == 0  # dropped once unused


async def test_a_failing_holder_releases_the_key() -> None:
    locks = KeyedLocks()

    async def fail() -> None:
        async with locks.hold("k"):
            raise RuntimeError("boom")

    results = await asyncio.gather(fail(), fail(), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(locks) == 0
    async with asyncio.timeout(1):
        async with locks.hold("k"):
            pass
