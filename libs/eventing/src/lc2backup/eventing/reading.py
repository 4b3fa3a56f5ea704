"""Reading the stream with batched Direct Get: a backup's history, or the whole log from a position.

One request returns up to ``batch`` messages followed by an end-of-batch status (nats-server >= 2.11), so
loading a backup costs one round trip and a projection catches up without any consumer state on the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from lc2backup.eventing.errors import EventingError


@dataclass(frozen=True, slots=True)
class StoredMessage:
    sequence: int
    subject: str
    data: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Batch:
    messages: list[StoredMessage]
    more: bool  # the server still holds matching messages after this batch


class DirectReader:
    """Multiplexes batched Direct Get requests over one wildcard inbox subscription."""

    def __init__(self, nc: NatsClient, stream: str, timeout: float = 5.0) -> None:
        self._nc = nc
        self._stream = stream
        self._timeout = timeout
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._waiting: dict[str, asyncio.Queue[Msg]] = {}
        self._tokens = itertools.count()
        self._lock = asyncio.Lock()

    @property
    def stream(self) -> str:
        return self._stream

    async def _ensure_subscribed(self) -> None:
        if self._sub is not None:
            return
        async with self._lock:
            if self._sub is None:
                self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._dispatch)

    async def _dispatch(self, msg: Msg) -> None:
        queue = self._waiting.get(msg.subject.rsplit(".", 1)[-1])
        if queue is not None:
            queue.put_nowait(msg)

    async def read(self, subject: str, start_sequence: int, batch: int = 1000) -> Batch:
        """Messages on ``subject`` (wildcards allowed) from ``start_sequence`` on, at most ``batch``."""
        await self._ensure_subscribed()
        token = str(next(self._tokens))
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._waiting[token] = queue
        request = {"seq": max(start_sequence, 1), "next_by_subj": subject, "batch": batch}
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{self._stream}", json.dumps(request).encode(), reply=f"{self._inbox}.{token}"
            )
            messages: list[StoredMessage] = []
            while True:
                msg = queue.get_nowait() if not queue.empty() else await self._next(queue)
                headers = dict(msg.headers or {})
                status = headers.get("Status")
                if status is None:
                    messages.append(
                        StoredMessage(int(headers["Nats-Sequence"]), headers["Nats-Subject"], msg.data, headers)
                    )
                    continue
                if status == "204":  # end of batch
                    return Batch(messages, int(headers.get("Nats-Num-Pending", "0")) > 0)
                if status == "404":  # nothing (more) on this subject
                    return Batch(messages, False)
                if status == "408" and messages:
                    return Batch(messages, True)
                raise EventingError(f"direct get on {self._stream} failed: {status} {headers.get('Description', '')}")
        finally:
            del self._waiting[token]

    async def _next(self, queue: asyncio.Queue[Msg]) -> Msg:
        try:
            async with asyncio.timeout(self._timeout):
                return await queue.get()
        except TimeoutError as exc:
            raise EventingError(f"direct get on {self._stream} timed out after {self._timeout}s") from exc

    async def read_all(self, subject: str, start_sequence: int = 1, batch: int = 1000) -> list[StoredMessage]:
        out: list[StoredMessage] = []
        seq = start_sequence
        while True:
            page = await self.read(subject, seq, batch)
            out.extend(page.messages)
            if not page.more or not page.messages:
                return out
            seq = page.messages[-1].sequence + 1

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
