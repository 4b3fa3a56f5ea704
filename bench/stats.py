"""Repeated measurements: samples, median and spread, and the goals they are judged by."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Measure:
    """One figure measured ``len(samples)`` times (one sample per repetition)."""

    unit: str
    samples: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def low(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def high(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def text(self) -> str:
        if not self.samples:
            return "—"
        if len(self.samples) == 1:
            return f"{fmt(self.median)} {self.unit}"
        return f"{fmt(self.median)} ({fmt(self.low)}–{fmt(self.high)}) {self.unit}"

    def as_json(self) -> dict[str, object]:
        return {
            "unit": self.unit,
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "samples": self.samples,
        }


@dataclass(frozen=True)
class Goal:
    """``subject op threshold``: the subject is the ratio to the baseline or our own median."""

    subject: Literal["ratio", "value"]
    op: Literal[">=", "<="]
    threshold: float

    def met(self, value: float | None) -> bool | None:
        if value is None or value != value:  # nan
            return None
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def text(self) -> str:
        return f"{self.subject} {self.op} {fmt(self.threshold)}"


def fmt(value: float) -> str:
    """Three significant figures, thousands separated: 1,234 / 56.7 / 0.812."""
    if value != value:
        return "nan"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
