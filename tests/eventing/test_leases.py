"""Leases on a real NATS KV bucket: one holder at a time, a silent holder's lease runs out, a holder that cannot
renew stops its work. Each piece of work counts its own runs where they happen (the work itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from lc2backup.eventing import LeasedWork, Leases, Topology, ensure_leases
from lc2backup.eventing.leases import cancelled
from tests.polling import eventually


@pytest.fixture
async def kv(nc: NatsClient, topology: Topology) -> KeyValue:
    return await ensure_leases(nc.jetstream(), topology)


async def test_a_live_lease_keeps_every_other_process_out(kv: KeyValue) -> None:
    a, b = Leases(kv, "a", 30), Leases(kv, "b", 30)
    assert await a.acquire("export.x") is None
    assert await b.acquire("export.x") == "a"
    assert await a.acquire("export.x") is None  # already ours: taken again (renewed)
    assert await b.renew("export.x") is False  # not b's to renew
    await b.release("export.x")  # not b's to give up: left alone
    assert await b.acquire("export.x") == "a"
    await a.release("export.x")
    assert await b.acquire("export.x") is None


async def test_a_lease_nobody_renews_runs_out_and_is_taken_over(kv: KeyValue) -> None:
    now = [1000.0]
    a, b = Leases(kv, "a", 5, clock=lambda: now[0]), Leases(kv, "b", 5, clock=lambda: now[0])
    assert await a.acquire("export.y") is None
    now[0] += 4.9
    assert await b.acquire("export.y") == "a"
    now[0] += 0.2  # a was killed: its lease ends 5 s after it was last renewed
    assert await b.acquire("export.y") is None
    assert await a.renew("export.y") is False  # a, had it survived, learns the work is no longer its own


async def test_two_processes_starting_the_same_work_run_it_once(kv: KeyValue) -> None:
    release = asyncio.Event()
    runs: list[str] = []

    def work(owner: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            runs.append(owner)
            await release.wait()

        return run

    a, b = LeasedWork(Leases(kv, "a", 3)), LeasedWork(Leases(kv, "b", 3))
    try:
        assert await a.start("export.z", work("a")) is None
        assert await a.start("export.z", work("a")) is None  # a second poll here joins the running work
        assert await b.start("export.z", work("b")) == "a"
        await asyncio.sleep(2.5)  # past most of the lease: it is renewed while the work runs
        assert await b.start("export.z", work("b")) == "a"
        assert runs == ["a"]
        release.set()
        await eventually(lambda: _settled(a, "export.z"), timeout=10, what="a's work ended")
        assert await b.start("export.z", work("b")) is None  # given up at the end: taken at once
        await eventually(lambda: _settled(b, "export.z"), timeout=10, what="b's work ended")
        assert runs == ["a", "b"]  # control: a second run is counted, so a doubled one would have been seen
    finally:
        await a.close()
        await b.close()


async def test_a_holder_that_loses_its_lease_stops_its_work(kv: KeyValue) -> None:
    stopped = asyncio.Event()

    async def run() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    a = LeasedWork(Leases(kv, "a", 1.5))
    try:
        assert await a.start("export.w", run) is None
        await kv.put("export.w", b'{"owner": "b", "expires": 9e12}')  # b took it (a's lease ran out meanwhile)
        await asyncio.wait_for(stopped.wait(), timeout=10)
        entry = await kv.get("export.w")
        assert b'"b"' in (entry.value or b"")  # a gave up nothing that was not its own
    finally:
        await a.close()


async def _settled(work: LeasedWork, key: str) -> bool:
    return not work.running(key)


async def test_work_that_swallows_a_cancel_is_cancelled_again_until_it_ends() -> None:
    """nats-py's publish swallows a ``CancelledError`` that lands in its flush: a lease keeper cancelled there went
    on renewing for ever and ``stop`` waited on it (seen as a restore past its deadline that never failed)."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 3:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    task.cancel()  # the control: one cancel, swallowed, leaves it running
    done, _ = await asyncio.wait({task}, timeout=0.2)
    assert not done and swallowed == 1
    await asyncio.wait_for(cancelled(task, every=0.05), timeout=5)
    assert task.cancelled() and swallowed == 3
