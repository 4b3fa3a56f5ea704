"""Every benchmark once at its tiny size, so the harness cannot rot. No timing is asserted: only that each
figure came out sane (positive, one sample per repetition) and the runs did what they claim (the harness
itself checks object counts and backup outcomes, and raises otherwise).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from bench.__main__ import main
from bench.context import Context, Peers
from bench.report import BenchResult, table
from bench.sizes import TINY
from bench.suite import BENCHMARKS, run_one

from lc2backup.devstack import SERVICE_MODULES, LocalStack

pytestmark = pytest.mark.bench


@pytest.fixture
def ctx(stack: LocalStack, tmp_path: Path) -> Context:
    return Context(stack, tmp_path, TINY, Peers.find(), say=lambda _: None)


def _sane(result: BenchResult) -> None:
    assert result.error is None
    assert result.rows, f"{result.bench} produced no figures"
    for row in result.rows:
        for measure in (row.ours, row.baseline):
            if measure is None:
                continue
            assert measure.samples, row.figure
            assert all(math.isfinite(v) and v > 0 for v in measure.samples), (row.figure, measure.samples)
    assert result.bench in table([result])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("bench_id", list(BENCHMARKS))
async def test_benchmark_runs_at_tiny_size(bench_id: str, ctx: Context) -> None:
    result = await run_one(BENCHMARKS[bench_id], ctx)
    _sane(result)
    if bench_id == "B1":
        assert len(result.rows) == 2 and all(r.baseline is not None for r in result.rows)
    if bench_id == "B7":
        assert sum(r.goal is not None for r in result.rows) == len(SERVICE_MODULES)  # every service, started alone
    if bench_id == "B9":  # a kept fold reads its anchor and the one new event; a full load the whole history
        kept, full = result.rows
        assert kept.goal is not None and full.goal is None
        assert kept.extra["messages_read_median_long"] == 2 == kept.extra["messages_read_median_short"]
        assert full.extra["messages_read_median_long"] > TINY.b9_long_events
    if bench_id == "B4":  # a peer that is not installed is skipped (make bench installs both)
        for peer, path in ctx.peers.as_dict().items():
            assert (path is not None) == any(r.baseline_name.startswith(peer) for r in result.rows)


def test_command_line_writes_the_results_file(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    code = main(["--size", "tiny", "--only", "B1", "--output", str(output), "--quiet-load", "1000"])
    assert code == 0
    doc = json.loads(output.read_text())
    assert doc["machine"]["logical_cpus"] >= 1
    assert doc["results"][0]["bench"] == "B1"
    assert doc["results"][0]["load_1min_before"] >= 0
