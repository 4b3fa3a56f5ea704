"""A lane's messages take effect in stream order, also across a crash and across replicas.

Within one process, ``KeyedLocks`` gives a lane's messages their turns in delivery order, and first deliveries
come in stream order. That is not enough: the messages a crashed process held come back only after the ack
wait, while the later ones are handed to the restarted process at once (and a second replica takes whatever
it pulls). So at its turn a message also reads what precedes it on the stream and is not yet acknowledged
(from the consumer's ack floor on): while an earlier message of the same lane has not taken effect, this one
is handed back (``RetryLater``) and comes again shortly, after the earlier one.

The submission order is the stream's: commands are stored in the order they are published (NATS and the
API alike), and BackupRequested events in the order intake recorded them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from nats.js import JetStreamContext

from lc2backup.eventing import DirectReader, RetryLater, StoredMessage
from lc2backup.runtime import KeyedLocks

LaneOf = Callable[[StoredMessage], str | None]
TookEffect = Callable[[StoredMessage], Awaitable[bool]]
PAGE = 256


class LaneOrder:
    """``async with order.turn(lane, sequence)``: the body runs once every earlier message of the lane has
    taken effect; it raises ``RetryLater`` while one has not."""

    def __init__(
        self,
        js: JetStreamContext,
        reader: DirectReader,
        *,
        durable: str,
        subject: str,
        lane_of: LaneOf,
        took_effect: TookEffect,
        retry_delay: float = 1.0,
    ) -> None:
        self._js = js
        self._reader = reader
        self._durable = durable
        self._subject = subject
        self._lane_of = lane_of
        self._took_effect = took_effect
        self._retry_delay = retry_delay
        self._turns = KeyedLocks()
        self._done: set[int] = set()  # sequences this process saw take effect, above the last ack floor read

    @asynccontextmanager
    async def turn(self, lane: str, sequence: int) -> AsyncIterator[None]:
        # Nothing awaits before the lock is requested: turns are handed out in delivery order (``KeyedLocks``).
        async with self._turns.hold(lane):
            await self._wait_for_earlier(lane, sequence)
            yield
            self._done.add(sequence)

    async def _wait_for_earlier(self, lane: str, sequence: int) -> None:
        info = await self._js.consumer_info(self._reader.stream, self._durable)
        floor = int(info.ack_floor.stream_seq) if info.ack_floor and info.ack_floor.stream_seq else 0
        self._done = {s for s in self._done if s > floor}
        start = floor + 1
        while start < sequence:
            page = await self._reader.read(self._subject, start, batch=PAGE)
            for message in page.messages:
                if message.sequence >= sequence:
                    return
                if message.sequence in self._done or self._lane_of(message) != lane:
                    continue
                if not await self._took_effect(message):
                    raise RetryLater(
                        f"lane {lane}: waiting for the earlier message {message.sequence}", self._retry_delay
                    )
                self._done.add(message.sequence)
            if not page.more or not page.messages:
                return
            start = page.messages[-1].sequence + 1
