"""The results: one row per figure, printed as one table and written to ``bench/results/latest.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import Goal, Measure, fmt


@dataclass
class Row:
    """One figure of one benchmark, beside its baseline (if it has one) and judged by its goal (if any).

    ``ratio`` is ours/baseline of the medians, in the figure's own direction: a rate ratio above 1 and a time
    ratio below 1 both mean we are faster.
    """

    bench: str
    figure: str
    ours: Measure
    baseline_name: str = ""
    baseline: Measure | None = None
    goal: Goal | None = None
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.samples or not self.ours.samples:
            return None
        if self.baseline.median == 0:
            return None
        return self.ours.median / self.baseline.median

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.goal.met(self.ratio if self.goal.subject == "ratio" else self.ours.median)

    def as_json(self) -> dict[str, object]:
        return {
            "bench": self.bench,
            "figure": self.figure,
            "ours": self.ours.as_json(),
            "baseline_name": self.baseline_name or None,
            "baseline": self.baseline.as_json() if self.baseline else None,
            "ratio": self.ratio,
            "goal": self.goal.text() if self.goal else None,
            "met": self.met,
            "note": self.note or None,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass
class BenchResult:
    """What one benchmark produced, with the load it ran under."""

    bench: str
    title: str
    rows: list[Row]
    load_before: float
    seconds: float
    params: dict[str, object] = field(default_factory=dict)
    error: str | None = None
    measured_at: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "bench": self.bench,
            "title": self.title,
            "measured_at": self.measured_at,
            "load_1min_before": self.load_before,
            "seconds": round(self.seconds, 1),
            "params": self.params,
            "rows": [r.as_json() for r in self.rows],
            **({"error": self.error} if self.error else {}),
        }


def _met_text(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[met]


def table(results: Sequence[BenchResult]) -> str:
    """A plain-text table, one line per figure (fits a 160-column terminal)."""
    head = ("id", "figure", "ours median (min–max)", "baseline median (min–max)", "ratio", "goal", "met", "load")
    lines: list[tuple[str, ...]] = [head]
    for result in results:
        if result.error:
            lines.append((result.bench, f"FAILED: {result.error[:100]}", "", "", "", "", "NO", fmt(result.load_before)))
        for row in result.rows:
            baseline = f"{row.baseline_name}: {row.baseline.text()}" if row.baseline else ""
            ratio = fmt(row.ratio) if row.ratio is not None else ""
            goal = row.goal.text() if row.goal else ""
            lines.append(
                (
                    row.bench,
                    row.figure,
                    row.ours.text(),
                    baseline,
                    ratio,
                    goal,
                    _met_text(row.met),
                    fmt(result.load_before),
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_json(
    path: Path, machine: dict[str, object], results: Sequence[BenchResult], *, merge: bool = False, **meta: object
) -> None:
    """Write the run's document; ``merge`` keeps the other benchmarks' results of the file already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = [r.as_json() for r in results]
    if merge and path.exists():
        kept = [
            r for r in json.loads(path.read_text()).get("results", []) if r["bench"] not in {r.bench for r in results}
        ]
        fresh = sorted(kept + fresh, key=lambda r: str(r["bench"]))
    doc = {**meta, "machine": machine, "results": fresh}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
