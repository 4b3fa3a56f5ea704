"""Load-fold-decide-append for any fold: the one way services read and change a backup.

``record`` re-runs ``decide`` on fresh state after every conflict (via ``EventStore.execute``) and returns
the state after the append, folded from what the store saw plus what was appended: no second read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from lc2backup.domain.wire import DomainEvent, RecordedEvent
from lc2backup.eventing.store import Causation, EventStore, History

S = TypeVar("S")
Fold = Callable[[str, Iterable[RecordedEvent]], S]


@dataclass(frozen=True)
class Recorded(Generic[S]):
    state: S
    appended: tuple[RecordedEvent, ...]


class Repository(Generic[S]):
    def __init__(self, store: EventStore, fold: Fold[S]) -> None:
        self.store = store
        self._fold = fold

    async def load(self, backup_id: str) -> tuple[S, History]:
        history = await self.store.load(backup_id)
        return self._fold(backup_id, history.events), history

    async def record(
        self, backup_id: str, causation: Causation, decide: Callable[[S], Sequence[DomainEvent]]
    ) -> Recorded[S]:
        def on_history(history: History) -> Sequence[DomainEvent]:
            return decide(self._fold(history.backup_id, history.events))

        result = await self.store.execute(backup_id, on_history, causation=causation)
        return Recorded(self._fold(backup_id, result.events()), result.appended)
