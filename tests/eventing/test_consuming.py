"""The durable pull-consumer runner against a real nats-server: ack, nak with delay, dead letters, shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from lc2backup.domain import registry
from lc2backup.eventing import (
    ConsumerRunner,
    ConsumerSpec,
    DeadLetters,
    EventStore,
    PoisonMessage,
    RetryLater,
    RetryPolicy,
    Topology,
    ensure_streams,
)
from tests.polling import eventually

SUBJECT = "lc2.backup.evt.test.Probe"


@pytest.fixture
async def js_ready(nc: NatsClient, topology: Topology) -> AsyncIterator[NatsClient]:
    await ensure_streams(nc.jetstream(), topology)
    yield nc


def runner_for(
    nc: NatsClient, topology: Topology, handler: Callable[[Msg], Awaitable[None]], **kwargs: object
) -> ConsumerRunner:
    spec = ConsumerSpec(
        stream=topology.events_stream,
        durable="t",
        filter_subjects=(topology.all_events,),
        ack_wait=float(kwargs.pop("ack_wait", 2.0)),
    )  # type: ignore[arg-type]
    return ConsumerRunner(nc, spec, handler, dead_letters=DeadLetters(nc.jetstream(), topology, "tests"), **kwargs)  # type: ignore[arg-type]


async def run_until(runner: ConsumerRunner, done: Callable[[], bool], timeout: float = 20) -> None:
    """Run ``runner`` until ``done()``; on timeout the failure shows the runner's counters."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    def reached() -> bool:
        assert done(), f"not yet: {runner.stats}"
        return True

    try:
        await eventually(reached, timeout=timeout, interval=0.02, what="the runner's expected outcome")
    finally:
        stop.set()
        await task


async def publish(nc: NatsClient, *bodies: bytes) -> None:
    for body in bodies:
        await nc.jetstream().publish(SUBJECT, body)


async def dead_letters(nc: NatsClient, topology: Topology) -> list[Msg]:
    sub = await nc.jetstream().subscribe(f"{topology.prefix}.dlq.>", ordered_consumer=True)
    out = []
    try:
        while True:
            out.append(await sub.next_msg(timeout=0.5))
    except Exception:
        pass
    await sub.unsubscribe()
    return out


async def test_handled_messages_are_acked_once(js_ready: NatsClient, topology: Topology) -> None:
    seen: list[bytes] = []

    async def handler(msg: Msg) -> None:
        seen.append(msg.data)

    await publish(js_ready, b"a", b"b", b"c")
    runner = runner_for(js_ready, topology, handler)
    await run_until(runner, lambda: runner.stats.acked == 3)
    info = await js_ready.jetstream().consumer_info(topology.events_stream, "t")
    assert sorted(seen) == [b"a", b"b", b"c"] and info.num_ack_pending == 0 and info.num_redelivered == 0


async def test_retry_later_naks_and_the_message_comes_back(js_ready: NatsClient, topology: Topology) -> None:
    deliveries: Counter[bytes] = Counter()

    async def handler(msg: Msg) -> None:
        deliveries[msg.data] += 1
        if deliveries[msg.data] < 3:
            raise RetryLater("operation still running", delay=0.2)

    await publish(js_ready, b"poll")
    runner = runner_for(js_ready, topology, handler)
    await run_until(runner, lambda: runner.stats.acked == 1)
    assert deliveries[b"poll"] == 3 and runner.stats.retried == 2


async def test_poison_goes_to_the_dead_letter_stream_with_its_reason(js_ready: NatsClient, topology: Topology) -> None:
    hooked: list[str] = []

    async def handler(msg: Msg) -> None:
        if msg.data.startswith(b"\xff"):
            raise PoisonMessage("payload is not UTF-8")

    async def hook(msg: Msg, reason: str) -> None:
        hooked.append(reason)

    await publish(js_ready, b"\xff\xfebad", b"good")
    runner = runner_for(js_ready, topology, handler, on_dead_letter=hook)
    await run_until(runner, lambda: runner.stats.acked == 1 and runner.stats.dead_lettered == 1)
    [letter] = await dead_letters(js_ready, topology)
    headers = letter.headers or {}
    assert letter.data == b"\xff\xfebad"
    assert headers["Lc2-Dlq-Reason"] == "payload is not UTF-8"
    assert headers["Lc2-Dlq-Subject"] == SUBJECT and headers["Lc2-Dlq-Sequence"] == "1"
    assert hooked == ["payload is not UTF-8"]
    await asyncio.sleep(0.5)
    assert runner.stats.dead_lettered == 1  # terminated: never redelivered


async def test_unexpected_errors_are_retried_then_dead_lettered(js_ready: NatsClient, topology: Topology) -> None:
    attempts = Counter[bytes]()

    async def handler(msg: Msg) -> None:
        attempts[msg.data] += 1
        raise ValueError("bug in handler")

    await publish(js_ready, b"x")
    runner = runner_for(js_ready, topology, handler, retry=RetryPolicy(delays=(0.05,), max_attempts=3))
    await run_until(runner, lambda: runner.stats.dead_lettered == 1)
    assert attempts[b"x"] == 3
    [letter] = await dead_letters(js_ready, topology)
    assert "gave up after 3 deliveries: ValueError('bug in handler')" in (letter.headers or {})["Lc2-Dlq-Reason"]


async def test_long_handlers_keep_their_message_with_heartbeats(js_ready: NatsClient, topology: Topology) -> None:
    deliveries = Counter[bytes]()

    async def handler(msg: Msg) -> None:
        deliveries[msg.data] += 1
        await asyncio.sleep(2.5)  # longer than ack_wait: in_progress must keep it ours

    await publish(js_ready, b"long")
    runner = runner_for(js_ready, topology, handler, ack_wait=1.0)
    await run_until(runner, lambda: runner.stats.acked == 1)
    assert deliveries[b"long"] == 1


async def test_shutdown_finishes_in_flight_work_then_hands_back_the_rest(
    js_ready: NatsClient, topology: Topology
) -> None:
    started = asyncio.Event()
    finished: list[bytes] = []

    async def slow(msg: Msg) -> None:
        started.set()
        await asyncio.sleep(0.3 if msg.data == b"short" else 30)
        finished.append(msg.data)

    await publish(js_ready, b"short", b"forever")
    runner = runner_for(js_ready, topology, slow, grace=1.0, ack_wait=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await started.wait()
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert finished == [b"short"]  # finished within the grace period and acked
    assert {t for t in asyncio.all_tasks() if "handle" in t.get_name()} == set()  # nothing leaked

    again: list[bytes] = []

    async def quick(msg: Msg) -> None:
        again.append(msg.data)

    second = runner_for(js_ready, topology, quick, ack_wait=30.0)
    await run_until(second, lambda: again == [b"forever"], timeout=5)  # nak'ed on cancel: back at once


async def test_an_event_the_domain_cannot_decode_is_dead_lettered_as_unreadable(
    js_ready: NatsClient, topology: Topology
) -> None:
    """The domain's codec raises its own errors; the store turns them into poison at its one decoding boundary."""
    store = EventStore(js_ready, registry(), producer="tests", topology=topology)

    async def handler(msg: Msg) -> None:
        store.delivered(msg)

    await publish(js_ready, b"{not json")
    runner = runner_for(js_ready, topology, handler)
    await run_until(runner, lambda: runner.stats.dead_lettered == 1)
    [letter] = await dead_letters(js_ready, topology)
    reason = (letter.headers or {})["Lc2-Dlq-Reason"]
    assert reason.startswith("unreadable: not a valid event envelope"), reason
    assert runner.stats.failed == 0  # not retried as an unexpected error


async def test_the_runner_names_its_steps_to_its_hook(js_ready: NatsClient, topology: Topology) -> None:
    """The steps the service scaffold hands to the crash points (lc2backup.runtime.crashpoints)."""
    steps: list[str] = []
    tries = Counter[bytes]()

    async def handler(msg: Msg) -> None:
        tries[msg.data] += 1
        if tries[msg.data] == 1:
            raise RetryLater("not yet", delay=0.1)

    await publish(js_ready, b"poll")
    runner = runner_for(js_ready, topology, handler, at_step=steps.append)
    await run_until(runner, lambda: runner.stats.acked == 1)
    assert steps == ["nak:t", "ack:t"]
