"""B9 — per-delivery load + fold of a long backup against a short one, with kept folds (after) and without (before).

One delivery of a long-running copy: another writer (the copier's progress report; here a second store on its
own connection) appends one event, then the handler loads the backup and folds it, which is what is timed.
Measured for a backup with ``b9_long_events`` events and one with ``b9_short_events``, ``b9_deliveries`` times
per repetition, through a ``Repository`` on a store that keeps folds (the services' default) and through one on
a store that keeps none (``cached_backups=0``: every load reads and folds the whole history, as before). The
first load of a kept backup is a full one; the figures are the steady state after it. Ratio long/short per mode,
goal with kept folds ≤ 2 (the issue's B9). The messages each load read (``Loaded.read``) go into the extras.
"""

from __future__ import annotations

import statistics
import time

import nats

from bench.context import Context
from bench.report import Row
from bench.stats import Goal, Measure
from bench.system import spec
from lc2backup.devstack import NatsServer
from lc2backup.domain import BackupState, RequestSource, fold, parse_spec, registry
from lc2backup.domain import events as ev
from lc2backup.eventing import Causation, DomainEvent, EventStore, Repository, Topology, ensure_streams

ID = "B9"
TITLE = "per-delivery load + fold, long backup vs short (kept folds vs full loads)"

CAUSE = Causation("bench")


def _history(events: int) -> list[DomainEvent]:
    requested = ev.BackupRequested(
        spec=parse_spec(spec("liferay-documents", "liferay-backups")),
        source=RequestSource(kind="nats", command_id="bench-b9"),
    )
    exporting = ev.DatabaseExportStarted(operation_id="op", location="s3://b/x", format="f", restorable=True)
    return [requested, exporting, *(_progress(n) for n in range(1, events - 1))]


def _progress(report: int) -> ev.DatabaseExportProgressed:
    return ev.DatabaseExportProgressed(report=report, bytes_written=report * 1024)


class _Backup:
    """One backup, grown by ``writer`` one progress report per delivery."""

    def __init__(self, backup_id: str, events: int) -> None:
        self.backup_id = backup_id
        self.events = events
        self.reports = events - 2
        self.version = 0

    async def create(self, writer: EventStore) -> None:
        result = await writer.append(self.backup_id, _history(self.events), expected_version=0, causation=CAUSE)
        self.version = result.version

    async def report(self, writer: EventStore) -> None:
        self.reports += 1
        event = _progress(self.reports)
        self.version = (
            await writer.append(self.backup_id, [event], expected_version=self.version, causation=CAUSE)
        ).version


async def _delivery(writer: EventStore, backups: Repository[BackupState], backup: _Backup, reads: list[int]) -> float:
    await backup.report(writer)
    started = time.perf_counter()
    state, loaded = await backups.load(backup.backup_id)
    elapsed = time.perf_counter() - started
    if state.database.progress_reports != backup.reports or loaded.version != backup.version:
        raise AssertionError(f"{backup.backup_id}: the load missed a report ({state.database.progress_reports})")
    reads.append(loaded.read)
    return elapsed * 1000


async def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    server = NatsServer(ctx.scratch("b9") / "nats")
    server.start()
    try:
        nc, other = await nats.connect(server.url), await nats.connect(server.url)
        try:
            topology = Topology()
            await ensure_streams(nc.jetstream(timeout=10), topology)
            writer = EventStore(other, registry(), producer="bench-copier", topology=topology)
            kept = EventStore(nc, registry(), producer="bench", topology=topology)
            full = EventStore(nc, registry(), producer="bench", topology=topology, cached_backups=0)
            modes = {"kept folds": Repository(kept, fold), "full loads": Repository(full, fold)}
            measures = {(mode, length): Measure("ms/delivery") for mode in modes for length in ("long", "short")}
            reads: dict[tuple[str, str], list[int]] = {key: [] for key in measures}
            longs = {mode: _Backup(f"b9-{n}-long", sizes.b9_long_events) for n, mode in enumerate(modes)}
            for mode, backup in longs.items():
                await backup.create(writer)
                await modes[mode].load(backup.backup_id)  # the first delivery of a kept backup loads in full
            for rep in range(sizes.repetitions):
                times: dict[tuple[str, str], list[float]] = {key: [] for key in measures}
                for i in range(sizes.b9_deliveries):  # interleaved, so drift hits every figure alike
                    for n, (mode, repository) in enumerate(modes.items()):
                        times[mode, "long"].append(
                            await _delivery(writer, repository, longs[mode], reads[mode, "long"])
                        )
                        # A fresh short backup per delivery, one event short, loaded once (kept) just before: each
                        # delivery loads exactly b9_short_events, as few messages after its kept position as the long.
                        short = _Backup(f"b9-{n}-short-{rep}-{i}", sizes.b9_short_events - 1)
                        await short.create(writer)
                        await repository.load(short.backup_id)
                        times[mode, "short"].append(await _delivery(writer, repository, short, reads[mode, "short"]))
                for key, values in times.items():
                    measures[key].add(statistics.median(values))
            for store in (writer, kept, full):
                await store.close()
        finally:
            await nc.close()
            await other.close()
    finally:
        server.stop()
    long_n, short_n = f"{sizes.b9_long_events:,}+", f"{sizes.b9_short_events:,}"
    rows = []
    for mode, goal, note in (
        ("kept folds", Goal("ratio", "<=", 2.0), "after: a load reads the kept position and the new events"),
        ("full loads", None, "before: every load reads and folds the whole history"),
    ):
        rows.append(
            Row(
                ID,
                f"load + fold per delivery, {long_n} events, {mode}",
                measures[mode, "long"],
                f"{short_n} events, {mode}",
                measures[mode, "short"],
                goal,
                note,
                extra={
                    "messages_read_median_long": statistics.median(reads[mode, "long"]),
                    "messages_read_median_short": statistics.median(reads[mode, "short"]),
                },
            )
        )
    return rows
