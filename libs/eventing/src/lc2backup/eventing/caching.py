"""Folded states kept between deliveries: a bounded least-recently-used map, one per process (per store).

Folding a backup's whole history on every delivery makes a long backup quadratic: a copy that reports
progress every few seconds for hours reads and folds thousands of events per poll. ``Repository`` keeps the
last fold of each backup it works on, with the position it includes, and then reads only the messages after
that position (``EventStore.load_after``).

An entry is a hint, never the truth. The tail read starts at the kept position and must find the very message
the fold ended on there, or the entry is dropped and the backup loaded in full (``HistoryGap``). Another
writer (a second replica, another service) appending to the backup is not a gap: its events are in the tail.
A conflicting append drops the entry too, so the retry decides on a full load. Entries are immutable; of two
entries for one backup the later position wins, so concurrent deliveries in one process cannot move it back.

Bounds: at most ``max_backups`` backups (least recently used evicted first; 0 keeps nothing, every load is a
full load), one entry per backup and fold; a repository may drop a backup that has ended (``finished``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from lc2backup.domain.wire import Envelope


@dataclass(frozen=True, slots=True)
class Kept:
    """A fold of a backup's subject up to ``version``, whose message there has the digest ``anchor``."""

    state: Any
    version: int
    anchor: str
    origin: Envelope | None  # the backup's first readable event (its request): correlation, causation, trace


class StateCache:
    def __init__(self, max_backups: int) -> None:
        if max_backups < 0:
            raise ValueError(f"max_backups must be >= 0, not {max_backups}")
        self.max_backups = max_backups
        self._entries: OrderedDict[str, dict[object, Kept]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, backup_id: object) -> bool:
        return backup_id in self._entries

    def get(self, backup_id: str, fold: object) -> Kept | None:
        folds = self._entries.get(backup_id)
        if folds is None:
            return None
        self._entries.move_to_end(backup_id)
        return folds.get(fold)

    def put(self, backup_id: str, fold: object, kept: Kept) -> None:
        """Keep ``kept`` unless an entry at a later position is already kept; evict beyond the bound."""
        if self.max_backups == 0:
            return
        folds = self._entries.setdefault(backup_id, {})
        current = folds.get(fold)
        if current is None or current.version <= kept.version:
            folds[fold] = kept
        self._entries.move_to_end(backup_id)
        while len(self._entries) > self.max_backups:
            self._entries.popitem(last=False)

    def discard(self, backup_id: str) -> None:
        self._entries.pop(backup_id, None)
