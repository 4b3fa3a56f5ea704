"""Load-fold-decide-append for any fold: the one way services read and change a backup.

A load folds only the events after the fold this process kept for the backup (``lc2backup.eventing.caching``),
or the whole history when none is kept or it no longer matches the subject (``HistoryGap``). ``record`` decides
on a fresh load, appends guarded by the loaded version, and on a conflict drops the kept fold and decides again
on a full load (bounded, jittered). It returns the state after the append, folded from the loaded state plus
what was appended: no second read.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, cast

from lc2backup.domain.wire import DomainEvent, Envelope, RecordedEvent
from lc2backup.eventing.caching import Kept
from lc2backup.eventing.errors import ConcurrencyError, ConflictRetriesExhausted, HistoryGap
from lc2backup.eventing.store import Causation, EventStore, History

log = logging.getLogger(__name__)

S = TypeVar("S")


class Fold(Protocol[S]):
    """``fold(backup_id, events)`` from the start, or ``fold(backup_id, events, state)`` onto a fold of the
    events before ``events``: both must give the same state for the same history."""

    def __call__(self, backup_id: str, events: Iterable[RecordedEvent], state: S | None = None, /) -> S: ...


@dataclass(frozen=True)
class Recorded(Generic[S]):
    state: S
    appended: tuple[RecordedEvent, ...]


@dataclass(frozen=True, slots=True)
class Loaded:
    """Where a load's state stands.

    ``version``: the stream sequence of the last message on the backup's subjects it includes (0: none yet);
    ``origin``: the backup's first readable event (its request), for correlation, causation and trace;
    ``read``: messages read from the stream for this load; ``tail``: folded onto a kept state (else in full).
    """

    version: int
    origin: Envelope | None
    read: int
    tail: bool


class Repository(Generic[S]):
    """Loads and records backups through one fold, keeping folds in the store's ``StateCache``.

    ``finished(state)`` true: the backup has ended, its fold is not kept (it is rarely loaded again).
    """

    def __init__(self, store: EventStore, fold: Fold[S], *, finished: Callable[[S], bool] | None = None) -> None:
        self.store = store
        self._fold = fold
        self._finished = finished

    async def load(self, backup_id: str) -> tuple[S, Loaded]:
        kept = self.store.states.get(backup_id, self._fold)
        if kept is not None:
            try:
                tail = await self.store.load_after(backup_id, kept.version, kept.anchor)
            except HistoryGap as exc:
                log.warning("backup %s: kept fold dropped, loading in full: %s", backup_id, exc)
                self.store.states.discard(backup_id)
            else:
                state = cast("S", kept.state)
                if tail.events:
                    state = self._fold(backup_id, tail.events, state)
                origin = kept.origin or (tail.events[0].envelope if tail.events else None)
                self._keep(backup_id, state, tail.version, tail.anchor, origin)
                return state, Loaded(tail.version, origin, len(tail.events) + len(tail.skipped) + 1, tail=True)
        history = await self.store.load(backup_id)
        return self._full(history)

    def _full(self, history: History) -> tuple[S, Loaded]:
        state = self._fold(history.backup_id, history.events)
        origin = history.events[0].envelope if history.events else None
        self._keep(history.backup_id, state, history.version, history.anchor, origin)
        return state, Loaded(history.version, origin, len(history.events) + len(history.skipped), tail=False)

    def _keep(self, backup_id: str, state: S, version: int, anchor: str, origin: Envelope | None) -> None:
        if version == 0 or not anchor:  # nothing to anchor a tail read on
            return
        if self._finished is not None and self._finished(state):
            self.store.states.discard(backup_id)
            return
        self.store.states.put(backup_id, self._fold, Kept(state, version, anchor, origin))

    async def record(
        self,
        backup_id: str,
        causation: Causation,
        decide: Callable[[S], Sequence[DomainEvent]],
        *,
        max_attempts: int = 8,
    ) -> Recorded[S]:
        for attempt in range(max_attempts):
            state, loaded = await self.load(backup_id)
            events = decide(state)
            if not events:
                return Recorded(state, ())
            try:
                result = await self.store.append(
                    backup_id,
                    events,
                    expected_version=loaded.version,
                    causation=causation,
                    correlation_id=loaded.origin.correlation_id if loaded.origin else None,
                )
            except ConcurrencyError:
                # Another writer appended after our load: decide again on a full load, not on the kept fold.
                self.store.states.discard(backup_id)
                await asyncio.sleep(random.random() * 0.01 * (attempt + 1))
                continue
            after = self._fold(backup_id, result.appended, state)
            if result.duplicates:
                # Some of ours were stored earlier, maybe with others' events between them: keep nothing.
                self.store.states.discard(backup_id)
            else:
                self._keep(
                    backup_id, after, result.version, result.anchor, loaded.origin or result.appended[0].envelope
                )
            return Recorded(after, result.appended)
        raise ConflictRetriesExhausted(
            self.store.topology.backup_subjects(backup_id), -1, f"after {max_attempts} attempts"
        )
