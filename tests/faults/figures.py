"""The fault suite's figures (cases run, faults survived, inputs tried), printed at the end of the session.

The README quotes them; they are counted from what the tests actually did (a crash is counted when its
marker file proves the process reached the point and died there, a restart when a fresh process is ready),
never declared up front.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Figures:
    cases_passed: int = 0
    cases_failed: int = 0
    crashes: Counter[str] = field(default_factory=Counter)  # service -> SIGKILLs at a crash point
    points: set[tuple[str, str, str]] = field(default_factory=set)  # (provider, service, point) crashed at
    restarts: int = 0
    outages: Counter[str] = field(default_factory=Counter)  # nats / postgres / object store -> survived
    outage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    poison: Counter[str] = field(default_factory=Counter)  # subject kind -> inputs published
    refused_at_the_door: int = 0  # too large for the stream: never stored
    dead_letters: int = 0
    flood_requests: int = 0
    flood_environments: int = 0
    flood_queued: int = 0
    backups: Counter[str] = field(default_factory=Counter)  # terminal state -> backups run by the suite
    durability_checks: int = 0

    def lines(self) -> list[str]:
        services = ", ".join(f"{name} {count}" for name, count in sorted(self.crashes.items()))
        outages = ", ".join(
            f"{name} {count}x ({self.outage_seconds[name]:.0f}s)" for name, count in sorted(self.outages.items())
        )
        backups = ", ".join(f"{count} {state}" for state, count in sorted(self.backups.items()))
        on: Counter[str] = Counter()
        for kind, count in self.poison.items():
            on[kind.split(":", 1)[0]] += count
        kinds = sorted({kind.split(":", 1)[1] for kind in self.poison})
        ended = "; every backup reached its terminal state" if not self.cases_failed else ""
        poison = (
            f"{sum(self.poison.values())} inputs ({on['event']} on event subjects, {on['command']} on the command "
            f"subject; {', '.join(kinds)}), {self.refused_at_the_door} refused by the server as too large, "
            f"{self.dead_letters} dead letters with a reason"
        )
        flood = (
            f"{self.flood_requests} requests across {self.flood_environments} environments, {self.flood_queued} of "
            "them queued, at most one active per environment, none dropped"
        )
        return [
            f"cases: {self.cases_passed} passed, {self.cases_failed} failed",
            f"crashes: {sum(self.crashes.values())} SIGKILLs at {len(self.points)} distinct (provider, service, "
            f"point) boundaries ({services}), {self.restarts} restarts{ended}",
            f"outages survived: {outages or 'none run'}",
            f"poison: {poison if self.poison else 'not run'}",
            f"flood: {flood if self.flood_requests else 'not run'}",
            f"backups driven through faults: {backups or 'none'}",
            f"durability settings checked on live servers: {self.durability_checks}",
        ]


FIGURES = Figures()
