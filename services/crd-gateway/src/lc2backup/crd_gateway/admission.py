"""Admission: one active backup per project+environment, the others queued in request order.

The lanes live in a NATS KV bucket (one key per project+environment), changed only by compare-and-set, so two
crd-gateway replicas cannot both admit. The consumer sees BackupRequested (enter the lane) and the terminal
events (leave it) in stream order; every delivery ends by making sure the lane's active backup is admitted, so
a crash between the lane update and the event is repaired by the redelivery.

Lanes are independent, so deliveries are handled concurrently, except that the entries of one lane run one
after another in stream order (``LaneOrder``, also across a crash: the queue order is the request order).
Leaving needs no such order: compare-and-set keeps the lane consistent whichever change comes first. One lane at a time made
admission the bottleneck of the whole system (benchmark B2: half a second of queueing per backup).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from lc2backup.crd_gateway.domain import Lane, decide_admission, lane_key, lane_of
from lc2backup.crd_gateway.errors import LaneContention
from lc2backup.crd_gateway.ordering import LaneOrder
from lc2backup.domain import fold
from lc2backup.domain.events import BackupFailed, BackupRequested, BackupSucceeded
from lc2backup.eventing import Causation, EventingError, EventStore, Repository, StoredMessage

log = logging.getLogger(__name__)

ENTERS = (BackupRequested.event_type,)
LEAVES = (BackupSucceeded.event_type, BackupFailed.event_type)
CAS_ATTEMPTS = 50


class Admission:
    def __init__(self, store: EventStore, lanes: KeyValue) -> None:
        self._store = store
        self._backups = Repository(store, fold)
        self._lanes = lanes
        self._order: LaneOrder | None = None

    def keep_order(self, order: LaneOrder) -> None:
        """Enter a lane's backups in stream order (``on_event``; see the module)."""
        self._order = order

    def requested_lane(self, message: StoredMessage) -> str | None:
        """The lane of a stored BackupRequested (None for anything else)."""
        try:
            event = self._store.decode(message).event
        except EventingError:
            return None
        return lane_of(event.spec) if isinstance(event, BackupRequested) else None

    async def entered(self, message: StoredMessage) -> bool:
        """Has the backup of this stored BackupRequested entered its lane (or ended without needing to)?"""
        backup_id = self._store.decode(message).envelope.backup_id
        state, _ = await self._backups.load(backup_id)
        if state.terminal or state.admitted or state.queue_position is not None:
            return True
        key = lane_key(state)
        if key is None:
            return True
        try:
            lane = Lane.decode((await self._lanes.get(key)).value)
        except KeyNotFoundError:
            return False
        return backup_id == lane.active or backup_id in lane.queue

    async def on_event(self, msg: Msg) -> None:
        delivered = self._store.delivered(msg)  # not a readable event: dead-lettered with the reason
        if not isinstance(delivered.event, BackupRequested):
            await self._admit(delivered.envelope.type, delivered.envelope.backup_id)
            return
        if self._order is None:
            await self._admit(delivered.envelope.type, delivered.envelope.backup_id)
            return
        async with self._order.turn(lane_of(delivered.event.spec), delivered.sequence):
            await self._admit(delivered.envelope.type, delivered.envelope.backup_id)

    async def _admit(self, event_type: str, backup_id: str) -> None:
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
