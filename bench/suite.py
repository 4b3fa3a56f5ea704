"""Running benchmarks: each after the machine is quiet, its load and duration recorded, failures kept."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import ModuleType

from bench import b1_appends, b2_orchestration, b3_rebuild, b4_copy, b5_memory, b6_dump, b7_startup, b8_resume, b9_state
from bench.context import Context
from bench.machine import load_1min, wait_for_quiet
from bench.report import BenchResult, Row

BENCHMARKS: dict[str, ModuleType] = {
    m.ID: m
    for m in (b1_appends, b2_orchestration, b3_rebuild, b4_copy, b5_memory, b6_dump, b7_startup, b8_resume, b9_state)
}


async def run_one(module: ModuleType, ctx: Context) -> BenchResult:
    """Run one benchmark module (``ID``, ``TITLE``, ``async run(ctx) -> list[Row]``); exceptions propagate."""
    started = time.monotonic()
    load = load_1min()
    run: Callable[[Context], Awaitable[list[Row]]] = module.run
    rows = await run(ctx)
    return BenchResult(module.ID, module.TITLE, rows, load, time.monotonic() - started)


def run_suite(
    ctx: Context, ids: Sequence[str], *, quiet_load: float, patience: float, keep_going: bool = True
) -> list[BenchResult]:
    results = []
    for bench_id in ids:
        module = BENCHMARKS[bench_id]
        ctx.say(f"{bench_id}: {module.TITLE}")
        load = wait_for_quiet(quiet_load, patience, ctx.say)
        started = time.monotonic()
        try:
            result = asyncio.run(run_one(module, ctx))
            result.load_before = load
        except Exception as exc:
            if not keep_going:
                raise
            ctx.say(traceback.format_exc())
            result = BenchResult(bench_id, module.TITLE, [], load, time.monotonic() - started, error=repr(exc))
        result.measured_at = datetime.now(UTC).isoformat(timespec="seconds")
        ctx.say(f"{bench_id}: done in {result.seconds:.0f}s (load before {load:.2f}, after {load_1min():.2f})")
        results.append(result)
    return results
