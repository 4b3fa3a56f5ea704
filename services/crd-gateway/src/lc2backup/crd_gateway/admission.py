"""Admission: one active backup per project+environment, the others queued in request order.

The lanes live in a NATS KV bucket (one key per project+environment), changed only by compare-and-set, so two
crd-gateway replicas cannot both admit. The consumer sees BackupRequested (enter the lane) and the terminal
events (leave it) in stream order, one at a time; every delivery ends by making sure the lane's active backup
is admitted, so a crash between the lane update and the event is repaired by the redelivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from lc2backup.crd_gateway.domain import Lane, decide_admission, lane_key
from lc2backup.crd_gateway.errors import LaneContention
from lc2backup.domain import fold
from lc2backup.eventing import Causation, EventStore, Repository

log = logging.getLogger(__name__)

ENTERS = ("BackupRequested",)
LEAVES = ("BackupSucceeded", "BackupFailed")
CAS_ATTEMPTS = 50


class Admission:
    def __init__(self, store: EventStore, lanes: KeyValue) -> None:
        self._store = store
        self._backups = Repository(store, fold)
        self._lanes = lanes

    async def on_event(self, msg: Msg) -> None:
        event = self._store.delivered(msg).envelope  # not a readable event: dead-lettered with the reason
        event_type, backup_id = event.type, event.backup_id
        state, _ = await self._backups.load(backup_id)
        key = lane_key(state)
        if key is None:
            return
        if event_type in ENTERS and not state.terminal:  # a redelivery after the end must not re-enter the lane
            lane = await self._change(key, lambda lane: lane.enter(backup_id))
        elif event_type in LEAVES and state.terminal:  # the fold decides, not the subject a message came on
            lane = await self._change(key, lambda lane: lane.leave(backup_id))
        else:
            return
        causation = Causation(backup_id)
        await self._backups.record(backup_id, causation, lambda s: decide_admission(s, lane))
        if lane.active is not None and lane.active != backup_id:
            await self._backups.record(lane.active, causation, lambda s: decide_admission(s, lane))

    async def _change(self, key: str, change: Callable[[Lane], Lane]) -> Lane:
        for _ in range(CAS_ATTEMPTS):
            try:
                entry = await self._lanes.get(key)
                current, revision = Lane.decode(entry.value), entry.revision
            except KeyNotFoundError:
                current, revision = Lane(), None
            changed = change(current)
            if changed == current:
                return current
            try:
                if revision is None:
                    await self._lanes.create(key, changed.encode())
                else:
                    await self._lanes.update(key, changed.encode(), last=revision)
            except KeyWrongLastSequenceError:
                continue  # another replica changed the lane: read it again
            return changed
        raise LaneContention(f"lane {key} kept changing under us")
