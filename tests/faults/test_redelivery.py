"""A message redelivered while its handler still runs joins that handler instead of starting the work twice.

Found by the NATS outage test: while nats-server is down a long handler's heartbeats cannot reach it, so
after the restart the server redelivers the message to the same consumer, and the local dump ran twice at
once (two versions of one dump, the checksum recorded from one and the object from the other). Here the
runner alone against a real nats-server killed and restarted under a handler that is still working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from lc2backup.devstack import NatsServer
from lc2backup.eventing import ConsumerRunner, ConsumerSpec, DeadLetters, Topology, ensure_streams
from tests.faults.figures import FIGURES
from tests.faults.harness import eventually

pytestmark = pytest.mark.faults

SUBJECT = "lc2.backup.evt.redelivery.Probe"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", sync_always=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.timeout(120)
async def test_a_redelivery_during_an_outage_joins_the_running_handler(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    topology = Topology()
    await ensure_streams(nc.jetstream(), topology)
    calls = running = peak = 0
    release = asyncio.Event()

    async def handler(_msg: object) -> None:
        nonlocal calls, running, peak
        calls += 1
        running += 1
        peak = max(peak, running)
        try:
            await release.wait()  # long work: still running when the server comes back
        finally:
            running -= 1

    spec = ConsumerSpec(stream=topology.events_stream, durable="joins", filter_subjects=(SUBJECT,), ack_wait=1.0)
    runner = ConsumerRunner(
        nc, spec, handler, dead_letters=DeadLetters(nc.jetstream(), topology, "tests"), pull_expires=0.5
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await nc.jetstream().publish(SUBJECT, b"work", stream=topology.events_stream)
        await eventually("the handler runs", lambda: _true(calls == 1))
        nats_server.kill()
        down = time.monotonic()
        await asyncio.sleep(3)  # longer than ack_wait: no heartbeat reaches the server
        nats_server.start()
        FIGURES.outage("nats", time.monotonic() - down, "under one handler still running (ack_wait 1 s)")
        # the redelivery reaches the runner: it either joins the running handler or (the bug) starts another
        redelivered = lambda: _true(runner.stats.joined + calls >= 2)  # noqa: E731
        await eventually("the message is redelivered to the runner", redelivered, timeout=30)
        release.set()
        await eventually("the message is acked", lambda: _true(runner.stats.acked >= 1), timeout=30)

        async def settled() -> bool:
            info = await nc.jetstream().consumer_info(topology.events_stream, "joins")
            return bool(info.num_ack_pending == 0 and info.num_pending == 0)

        await eventually("nothing left to deliver", settled, timeout=30)
    finally:
        release.set()
        stop.set()
        await task
        await nc.close()
    assert (calls, peak) == (1, 1), "the work ran twice"


async def _true(value: bool) -> bool:
    return value
