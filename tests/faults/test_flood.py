"""A burst of 1,000 requests across 20 environments (instant provider): nothing is dropped, at most one backup
per project+environment is active at any time, and the later requests wait, visibly queued, in request order.

Judged from the event log itself: every request has exactly one ``BackupRequested`` and exactly one
terminal event; per lane, each ``BackupAdmitted`` comes after the previous backup's terminal event in stream
order (no overlap) and admissions follow request order; a ``BackupQueued`` names the backup that was active
at the request's place in the stream (admission decides in stream order, one event at a time). The
projection showed backups in ``Queued`` while the burst ran.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
import pytest

from lc2backup.domain import backup_id_for_request
from tests.faults.figures import FIGURES
from tests.faults.harness import TOPOLOGY, EventLog, connect, settled
from tests.polling import eventually
from tests.support import System

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

REQUESTS = 1000
ENVIRONMENTS = 20


@pytest.fixture
def system_extra_env() -> dict[str, str]:
    return {"LC2_LOCAL__MODE": "instant"}


@dataclass
class Run:
    environment: str
    requested: int = 0
    admitted: int = 0
    ended: int = 0
    queued: int = 0
    behind: str | None = None
    types: list[str] = field(default_factory=list)


async def _runs(log: EventLog, ids: dict[str, str]) -> dict[str, Run]:
    """Every backup's requested / admitted / queued / ended stream sequences, read from the whole log."""
    runs: dict[str, Run] = {b: Run(env) for b, env in ids.items()}
    for message in await log.store.reader.read_all(TOPOLOGY.all_events):
        event = log.store.decode(message)
        run = runs[event.envelope.backup_id]  # no event of a backup nobody requested
        kind = event.envelope.type
        run.types.append(kind)
        if kind == "BackupRequested":
            run.requested = message.sequence
        elif kind == "BackupAdmitted":
            run.admitted = message.sequence
        elif kind == "BackupQueued":
            run.queued, run.behind = message.sequence, event.envelope.data["behind"]
        elif kind in ("BackupSucceeded", "BackupFailed", "BackupRejected"):
            run.ended = message.sequence
    return runs


def _check_lanes(runs: dict[str, Run]) -> None:
    """Per lane: admitted in request order, never two active at once, queued behind the active one."""
    lanes: dict[str, list[Run]] = defaultdict(list)
    for run in runs.values():
        lanes[run.environment].append(run)
    for env, lane in lanes.items():
        lane.sort(key=lambda r: r.requested)
        assert [r.admitted for r in lane] == sorted(r.admitted for r in lane), f"{env}: admitted out of order"
        for before, after in zip(lane, lane[1:], strict=False):
            assert after.admitted > before.ended, f"{env}: two backups active at once"
        for run in lane:  # admission decides in stream order: the one it waited behind was active right then
            if run.queued:
                active = runs[run.behind or ""]
                assert active.environment == env and active.requested < run.requested < active.ended
                assert run.queued < run.admitted


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


@pytest.mark.timeout(600)
async def test_a_burst_of_requests_is_admitted_one_per_environment_in_order_and_nothing_is_dropped(
    system: System, buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    requests = {f"flood-{i}": f"env-{i % ENVIRONMENTS}" for i in range(REQUESTS)}
    ids = {backup_id_for_request(r): env for r, env in requests.items()}
    log = EventLog(await connect(system))
    try:
        for request_id, env in requests.items():  # the burst: as fast as JetStream takes it
            spec = system.spec(source, destination, environment=env)
            await log.js.publish(TOPOLOGY.request_subject, json.dumps({"requestId": request_id, "spec": spec}).encode())

        most_queued = 0

        async def all_ended() -> int:
            nonlocal most_queued
            queued = await _count(system.projection_dsn, "SELECT count(*) FROM backups WHERE state = 'Queued'")
            most_queued = max(most_queued, queued)
            done = await _count(
                system.projection_dsn, "SELECT count(*) FROM backups WHERE state IN ('Succeeded', 'Failed', 'Rejected')"
            )
            assert done >= REQUESTS, f"{done} of {REQUESTS} backups ended"
            return done

        await eventually(all_ended, timeout=480, interval=0.5, what="every request ended", context=system.logs)
        await settled(log, system, timeout=120)

        runs = await _runs(log, ids)
    finally:
        await log.close()
        await log.nc.close()

    for backup_id, run in runs.items():  # nothing dropped, nothing doubled
        assert run.types.count("BackupRequested") == 1, (backup_id, run.types)
        assert run.types.count("BackupSucceeded") == 1, (backup_id, run.types)
        assert "BackupFailed" not in run.types and "BackupRejected" not in run.types, run.types
    _check_lanes(runs)
    queued = sum(1 for run in runs.values() if run.queued)
    assert queued > 0 and most_queued > 0, "no request ever waited: the burst did not test admission"
    FIGURES.flood_requests += REQUESTS
    FIGURES.flood_environments += ENVIRONMENTS
    FIGURES.flood_queued += queued
    FIGURES.backups["Succeeded"] += REQUESTS
