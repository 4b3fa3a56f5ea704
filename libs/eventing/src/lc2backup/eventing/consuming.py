"""The durable pull-consumer runner every service uses.

Policy: a handler that returns has done its effect, so the message is acked; ``RetryLater`` naks with its
delay (polls and transient failures); ``PoisonMessage`` dead-letters and terminates; any other exception is
retried with the declared backoff and dead-lettered once the attempts are spent. Long handlers keep the
message with ``in_progress`` heartbeats. Messages are pulled with our own pull requests rather than
``fetch()``: a message is dispatched the moment it arrives instead of when a batch fills or expires.

A message redelivered while this runner still handles it (its heartbeats could not reach the server in
time: a NATS outage, a stalled loop) joins the running handler instead of starting a second one: the work is
not done twice at once, and the handler settles the latest delivery, the one the server now waits for.

Shutdown is ordered: ``stop`` is set → no new pulls → in-flight handlers get ``grace`` seconds → the rest
are cancelled and their messages nak'ed for immediate redelivery → until our last pull request expires on
the server (at most ``pull_expires``), anything it still delivers is nak'ed too → the inbox is unsubscribed.
Without that last step a message delivered to an abandoned pull request would wait out ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from lc2backup.domain.errors import WireError
from lc2backup.eventing.deadletters import DeadLetters
from lc2backup.eventing.errors import PoisonMessage, RetryLater, TopologyError, UnreadableMessage
from lc2backup.eventing.steps import StepHook, no_step
from lc2backup.eventing.topology import ConsumerSpec, ensure_consumer

log = logging.getLogger(__name__)

Handler = Callable[[Msg], Awaitable[None]]
DeadLetterHook = Callable[[Msg, str], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for unexpected handler errors (by delivery count) and when to give up on them."""

    delays: Sequence[float] = field(default=(0.5, 1, 2, 5, 10, 30, 60))
    max_attempts: int = 10

    def delay(self, delivered: int) -> float:
        return float(self.delays[min(max(delivered - 1, 0), len(self.delays) - 1)])


@dataclass
class RunnerStats:
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    failed: int = 0
    joined: int = 0  # redeliveries that arrived while their message was still being handled


class ConsumerRunner:
    def __init__(
        self,
        nc: NatsClient,
        spec: ConsumerSpec,
        handler: Handler,
        *,
        dead_letters: DeadLetters,
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        pull_expires: float = 2.0,
        grace: float = 20.0,
        on_dead_letter: DeadLetterHook | None = None,
        at_step: StepHook = no_step,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self.spec = spec
        self._handler = handler
        self._dead_letters = dead_letters
        self._concurrency = concurrency
        self._retry = retry or RetryPolicy()
        self._expires = pull_expires
        self._grace = grace
        self._on_dead_letter = on_dead_letter
        self._at_step = at_step
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, list[Msg]] = {}  # stream sequence -> deliveries of a message being handled
        self._pull_deadline = 0.0
        self.stats = RunnerStats()

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_consumer(self._js, self.spec)
        queue: asyncio.Queue[Msg | None] = asyncio.Queue()
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=queue.put)
        stopper = asyncio.create_task(self._wake_on_stop(stop, queue), name=f"{self.spec.durable}-stopper")
        try:
            while not stop.is_set():
                free = self._concurrency - len(self._tasks)
                if free <= 0:
                    await asyncio.wait([*self._tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
                    continue
                await self._pull(inbox, queue, free, stop)
        finally:
            stopper.cancel()
            await self._finish_in_flight()
            await self._hand_back(queue)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _hand_back(self, queue: asyncio.Queue[Msg | None]) -> None:
        """Nak whatever our outstanding pull request still brings until the server expires it."""
        while (remaining := self._pull_deadline - time.monotonic()) > 0 or not queue.empty():
            try:
                async with asyncio.timeout(max(remaining, 0.01)):
                    msg = await queue.get()
            except TimeoutError:
                return
            if msg is None:
                continue
            if (msg.headers or {}).get("Status") is not None:
                return  # the server ended our pull request (expired or fulfilled): nothing more can come
            with contextlib.suppress(Exception):
                await msg.nak()

    @staticmethod
    async def _wake_on_stop(stop: asyncio.Event, queue: asyncio.Queue[Msg | None]) -> None:
        await stop.wait()
        queue.put_nowait(None)

    async def _pull(self, inbox: str, queue: asyncio.Queue[Msg | None], batch: int, stop: asyncio.Event) -> None:
        request = {"batch": batch, "expires": int(self._expires * 1e9)}
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.spec.stream}.{self.spec.durable}"
        try:
            await self._nc.publish(subject, json.dumps(request).encode(), reply=inbox)
        except Exception as exc:  # disconnected: wait for the reconnect
            log.warning("pull request on %s failed: %r", self.spec.durable, exc)
            await asyncio.sleep(1.0)
            return
        deadline = time.monotonic() + self._expires + 1.0
        self._pull_deadline = deadline
        received = 0
        while received < batch and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    msg = await queue.get()
            except TimeoutError:
                await self._check_consumer()  # no answer at all: the consumer may be gone
                return
            if msg is None:
                return
            status = (msg.headers or {}).get("Status")
            if status is None:
                received += 1
                deliveries = self._in_flight.get(_stream_sequence(msg))
                if deliveries is not None:  # redelivered while we still handle it: join, do not start again
                    deliveries.append(msg)
                    self.stats.joined += 1
                    continue
                task = asyncio.create_task(self._handle(msg), name=f"{self.spec.durable}-handle")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            if status == "100":  # idle heartbeat
                continue
            if status == "409" and "Deleted" in str((msg.headers or {}).get("Description", "")):
                log.warning("consumer %s was deleted; recreating it", self.spec.durable)
                await self._recreate()
            return  # 404 no messages, 408 expired, 409 limits: this pull request is over

    async def _check_consumer(self) -> None:
        try:
            await self._js.consumer_info(self.spec.stream, self.spec.durable)
        except NotFoundError:
            log.warning("consumer %s is missing; recreating it", self.spec.durable)
            await self._recreate()
        except Exception as exc:  # disconnected or JetStream restarting: the next pull retries
            log.warning("consumer %s not reachable: %r", self.spec.durable, exc)

    async def _recreate(self) -> None:
        """Create the consumer again. While the server is still deleting it, a create can be refused ("consumer
        does not exist") or undone: the service keeps running, and the next expired pull checks again."""
        try:
            await ensure_consumer(self._js, self.spec)
        except TopologyError as exc:
            log.warning("%s; checking again shortly", exc)
            await asyncio.sleep(0.5)

    async def _heartbeat(self, deliveries: list[Msg]) -> None:
        interval = max(self.spec.ack_wait / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await deliveries[-1].in_progress()

    async def _handle(self, msg: Msg) -> None:
        sequence = _stream_sequence(msg)
        deliveries = [msg]  # a redelivery that arrives meanwhile is appended; the latest one is settled
        if sequence >= 0:
            self._in_flight[sequence] = deliveries
        beat = asyncio.create_task(self._heartbeat(deliveries))
        try:
            await self._handler(msg)
        except RetryLater as retry:
            self.stats.retried += 1
            log.debug("%s: %s; again in %.1fs", self.spec.durable, retry.reason, retry.delay)
            self._at_step(f"nak:{self.spec.durable}")
            await self._settle(deliveries[-1].nak(delay=retry.delay))
        except PoisonMessage as poison:
            await self._dead_letter(deliveries[-1], poison.reason)
        except (UnreadableMessage, WireError) as unreadable:  # retrying cannot make these readable
            await self._dead_letter(deliveries[-1], f"unreadable: {unreadable}")
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await deliveries[-1].nak()
            raise
        except Exception as exc:
            self.stats.failed += 1
            delivered = _deliveries(deliveries[-1])
            if delivered >= self._retry.max_attempts:
                await self._dead_letter(deliveries[-1], f"gave up after {delivered} deliveries: {exc!r}")
            else:
                log.exception("handler %s failed (delivery %d); retrying", self.spec.durable, delivered)
                await self._settle(deliveries[-1].nak(delay=self._retry.delay(delivered)))
        else:
            self.stats.acked += 1
            self._at_step(f"ack:{self.spec.durable}")
            await self._settle(deliveries[-1].ack())
        finally:
            beat.cancel()
            if self._in_flight.get(sequence) is deliveries:
                del self._in_flight[sequence]

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        try:
            await self._dead_letters.record(msg, reason, consumer=self.spec.durable)
        except Exception:
            log.exception("cannot dead-letter %s; it will be redelivered", msg.subject)
            await self._settle(msg.nak(delay=self._retry.delay(_deliveries(msg))))
            return
        self.stats.dead_lettered += 1
        await self._settle(msg.term())
        if self._on_dead_letter is not None:
            try:
                await self._on_dead_letter(msg, reason)
            except Exception:
                log.exception("dead-letter hook failed for %s", msg.subject)

    @staticmethod
    async def _settle(call: Awaitable[None]) -> None:
        try:
            await call
        except Exception as exc:  # connection gone: the server redelivers after ack_wait
            log.warning("ack/nak not sent: %r", exc)

    async def _finish_in_flight(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _stream_sequence(msg: Msg) -> int:
    """The message's position in its stream (what identifies it across redeliveries); -1 without metadata."""
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:
        return -1


def _deliveries(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1
