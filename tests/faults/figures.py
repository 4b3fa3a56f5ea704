"""The fault suite's figures (cases run, faults survived, inputs tried), printed at the end of the session.

The README quotes them; they are counted from what the tests actually did (a crash is counted when its
marker file proves the process reached the point and died there, a restart when a fresh process is ready),
never declared up front.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figures:
    cases_passed: int = 0
    cases_failed: int = 0
    crashes: Counter[str] = field(default_factory=Counter)  # service -> SIGKILLs at a crash point
    points: set[tuple[str, str, str]] = field(default_factory=set)  # (provider, service, point) crashed at
    restarts: int = 0
    outages: list[tuple[str, float, str]] = field(default_factory=list)  # (server, seconds down, during what)
    poison: Counter[str] = field(default_factory=Counter)  # "event:<name>" / "command:<name>" -> inputs tried
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)  # (event/command, why) -> never stored
    dead_lettered: int = 0  # stored poison messages that ended in the dead-letter stream
    dead_letters: int = 0  # their dead letters: one per consumer that received the message
    rejected: int = 0  # stored poison that became a BackupRejected instead (a request of an unknown kind)
    flood_requests: int = 0
    flood_environments: int = 0
    flood_queued: int = 0
    backups: Counter[str] = field(default_factory=Counter)  # terminal state -> backups run by the suite
    durability: list[str] = field(default_factory=list)  # what each durability test checked, counted as it ran

    def outage(self, server: str, seconds: float, during: str) -> None:
        self.outages.append((server, seconds, during))

    def to_wire(self) -> dict[str, Any]:
        """What a pytest-xdist worker sends the controller at its end (JSON: tuple keys become lists)."""
        return {
            "counts": {name: getattr(self, name) for name in _COUNTS},
            "crashes": list(self.crashes.items()),
            "points": sorted(self.points),
            "outages": self.outages,
            "poison": list(self.poison.items()),
            "refused": [[list(key), count] for key, count in self.refused.items()],
            "backups": list(self.backups.items()),
            "durability": self.durability,
        }

    def merge(self, wire: dict[str, Any]) -> None:
        """Add a worker's figures (``to_wire``) to these."""
        for name, value in wire["counts"].items():
            setattr(self, name, getattr(self, name) + value)
        self.crashes.update(dict(wire["crashes"]))
        self.points.update(tuple(point) for point in wire["points"])
        self.outages += [tuple(outage) for outage in wire["outages"]]
        self.poison.update(dict(wire["poison"]))
        self.refused.update({tuple(key): count for key, count in wire["refused"]})
        self.backups.update(dict(wire["backups"]))
        self.durability += wire["durability"]

    def lines(self) -> list[str]:
        services = ", ".join(f"{name} {count}" for name, count in sorted(self.crashes.items()))
        down: dict[str, list[str]] = defaultdict(list)
        for server, seconds, during in sorted(self.outages, key=lambda outage: -outage[1]):  # longest first
            down[server].append(f"{seconds:.1f} s {during}")
        outages = "; ".join(f"{server} {len(each)}x: {', '.join(each)}" for server, each in sorted(down.items()))
        backups = ", ".join(f"{count} {state}" for state, count in sorted(self.backups.items()))
        ended = "; every backup reached its terminal state" if not self.cases_failed else ""
        return [
            f"cases: {self.cases_passed} passed, {self.cases_failed} failed",
            f"crashes: {sum(self.crashes.values())} SIGKILLs at {len(self.points)} distinct (provider, service, "
            f"point) boundaries ({services}), {self.restarts} restarts{ended}",
            f"outages survived: {outages or 'none run'}",
            f"poison: {self._poison() if self.poison else 'not run'}",
            f"flood: {self._flood() if self.flood_requests else 'not run'}",
            f"backups driven through faults: {backups or 'none'}",
            f"durability: {'; '.join(self.durability) or 'not run'}",
        ]

    def _poison(self) -> str:
        tried: Counter[str] = Counter()
        for kind, count in self.poison.items():
            tried[kind.split(":", 1)[0]] += count
        refused: Counter[str] = Counter()
        for (subject, _), count in self.refused.items():
            refused[subject] += count
        why = ", ".join(f"{count} {reason}" for (_, reason), count in sorted(self.refused.items()))
        stored = {subject: tried[subject] - refused[subject] for subject in ("event", "command")}
        kinds = sorted({kind.split(":", 1)[1] for kind in self.poison} - {"oversized"})
        return (
            f"{sum(tried.values())} inputs tried; {sum(refused.values())} refused by the server before they were "
            f"stored ({why}); the other {sum(stored.values())} stored and delivered ({stored['event']} on event "
            f"subjects, {stored['command']} on the command subject; {', '.join(kinds)}): {self.dead_lettered} "
            f"dead-lettered with a reason ({self.dead_letters} dead letters, one per consumer that received the "
            f"message), {self.rejected} rejected as BackupRejected (a request of an unknown kind)"
        )

    def _flood(self) -> str:
        return (
            f"{self.flood_requests} requests across {self.flood_environments} environments, {self.flood_queued} of "
            "them queued, at most one active per environment, none dropped"
        )


_COUNTS = (
    "restarts",
    "dead_lettered",
    "dead_letters",
    "rejected",
    "flood_requests",
    "flood_environments",
    "flood_queued",
)  # cases_passed/cases_failed are counted where the reports arrive (the controller under xdist)
FIGURES = Figures()
