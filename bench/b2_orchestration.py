"""B2 — orchestration: backups through all five services with the ``instant`` provider (nothing moves).

``b2_concurrency`` clients, each with its own environment (admission runs one backup per project+environment
at a time), submit a backup as a NATS command, wait for its terminal event on the log, and submit the next,
until ``b2_backups`` have ended. Latency is from publishing the command to the ``BackupSucceeded`` event
arriving at the client. The upper bound is B1's raw append rate divided by the events each backup appends.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import nats

from bench.context import Context
from bench.report import Row
from bench.s3 import bench_s3_client, ensure_bucket
from bench.stats import Goal, Measure, percentile
from bench.system import BenchSystem, Trail, spec
from lc2backup.eventing import Topology

ID = "B2"
TITLE = "orchestration, instant provider, all five services"
DESTINATION = "b2-backups"


def _timeline(trails: list[Trail]) -> dict[str, float]:
    """Median milliseconds from the command to each event reaching the client: where a backup's time goes."""
    at: dict[str, list[float]] = {}
    for trail in trails:
        for event_type, arrived in trail.arrived.items():
            at.setdefault(event_type, []).append((arrived - trail.submitted) * 1000)
    return {t: round(statistics.median(ms), 1) for t, ms in sorted(at.items(), key=lambda i: statistics.median(i[1]))}


async def _flood(system: BenchSystem, backups: int, concurrency: int) -> tuple[float, list[float], int]:
    """Returns (seconds, latencies, failures)."""
    remaining = iter(range(backups))
    latencies: list[float] = []
    failures = 0

    async def client(lane: int) -> None:
        nonlocal failures
        for _ in remaining:
            trail = await system.wait(
                await system.submit(spec("b2-source", DESTINATION, environment=f"env-{lane:02d}")), seconds=120
            )
            if trail.outcome != "BackupSucceeded":
                failures += 1
                continue
            latencies.append(trail.arrived["BackupSucceeded"] - trail.submitted)

    started = time.monotonic()
    await asyncio.gather(*(client(lane) for lane in range(concurrency)))
    return time.monotonic() - started, latencies, failures


async def _stream_messages(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(Topology().events_stream)
        return int(info.state.messages)
    finally:
        await nc.close()


async def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    system = BenchSystem(ctx.stack, ctx.scratch("b2"), base_env={"LC2_LOCAL__MODE": "instant"})
    system.start()
    rate, events_rate, p50, p99 = Measure("backups/s"), Measure("events/s"), Measure("ms"), Measure("ms")
    try:
        async with bench_s3_client(ctx.stack) as s3:
            await ensure_bucket(s3, DESTINATION)
        await system.connect()
        await _flood(system, max(2, sizes.b2_concurrency), sizes.b2_concurrency)  # warm-up: consumers, lanes
        cpu_before = system.cpu_seconds()
        for _ in range(sizes.repetitions):
            before = await _stream_messages(system.nats.url)
            seconds, latencies, failures = await _flood(system, sizes.b2_backups, sizes.b2_concurrency)
            if failures or not latencies:
                raise RuntimeError(f"{failures} of {sizes.b2_backups} backups did not succeed")
            events = await _stream_messages(system.nats.url) - before
            rate.add(sizes.b2_backups / seconds)
            events_rate.add(events / seconds)
            p50.add(percentile(latencies, 50) * 1000)
            p99.add(percentile(latencies, 99) * 1000)
        spent = {k: v - cpu_before.get(k, 0.0) for k, v in system.cpu_seconds().items()}
        total = sizes.b2_backups * sizes.repetitions
        cpu_ms = {name: round(seconds / total * 1000, 2) for name, seconds in spent.items()}
        per_backup = events_rate.median / rate.median
        assert system.log is not None
        steps = _timeline(list(system.log.trails.values()))
    finally:
        await system.close()
        system.stop()
    note = f"{sizes.b2_backups} backups, {sizes.b2_concurrency} in flight, {per_backup:.1f} events per backup"
    return [
        Row(ID, "backups/s", rate, goal=Goal("value", ">=", 50), note=note, extra={"CPU ms per backup": cpu_ms}),
        Row(ID, "events appended/s", events_rate, note="compare B1's raw append rates"),
        Row(ID, "request → Succeeded, p50", p50, extra={"median ms from the command to each event": steps}),
        Row(ID, "request → Succeeded, p99", p99, goal=Goal("value", "<=", 500)),
    ]
