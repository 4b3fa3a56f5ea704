"""Work a process owns for a while, outside any delivery: a local dump runs for as long as the database takes,
while the delivery that asked for it only polls.

A lease is one key in a NATS KV bucket, changed only by compare-and-set: ``{"owner", "expires"}``. A process
takes the lease of a piece of work before it starts it and renews it while the work runs; a replica that
finds a live lease leaves the work alone (one dump at a time, whichever replica the poll reaches), and when a
holder stops renewing (killed), its lease runs out and the next poll takes the work over. A holder that could
not renew before its own lease ran out (NATS unreachable) stops its work: by then another process may hold it.
Expiry is wall-clock time: replicas' clocks must agree within a fraction of the lease (NTP does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    owner: str
    expires: float  # seconds since the epoch

    def encode(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires": self.expires}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> Lease | None:
        try:
            value = json.loads(raw or b"")
            return cls(str(value["owner"]), float(value["expires"]))
        except (ValueError, KeyError, TypeError):
            return None  # unreadable or deleted: nobody holds it


class Leases:
    """The leases one process (``owner``) holds in ``kv``, each for ``seconds`` from its last renewal."""

    def __init__(self, kv: KeyValue, owner: str, seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self.owner = owner
        self.seconds = seconds
        self._clock = clock

    async def _read(self, key: str) -> tuple[Lease | None, int | None]:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None, None
        return Lease.decode(entry.value), entry.revision

    async def acquire(self, key: str) -> str | None:
        """Take the lease if it is free, expired or already ours: None; else the owner that holds it."""
        current, revision = await self._read(key)
        if current is not None and current.owner != self.owner and current.expires > self._clock():
            return current.owner
        lease = Lease(self.owner, self._clock() + self.seconds).encode()
        try:
            if revision is None:
                await self._kv.create(key, lease)
            else:
                await self._kv.update(key, lease, last=revision)
        except KeyWrongLastSequenceError:
            holder, _ = await self._read(key)  # another process took it first
            return holder.owner if holder is not None else "another process"
        return None

    async def renew(self, key: str) -> bool:
        """Extend our lease; False when it is no longer ours."""
        current, revision = await self._read(key)
        if current is None or current.owner != self.owner or revision is None:
            return False
        try:
            await self._kv.update(key, Lease(self.owner, self._clock() + self.seconds).encode(), last=revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def release(self, key: str) -> None:
        """Give our lease up (the next poll anywhere may take the work at once); someone else's is left alone."""
        current, revision = await self._read(key)
        if current is not None and current.owner == self.owner and revision is not None:
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._kv.delete(key, last=revision)


async def cancelled(task: asyncio.Task[None], every: float = 0.5) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again while it runs: a cancellation can be
    swallowed by a library it awaits (nats-py's flush of a publish catches ``CancelledError``), and one cancel
    then leaves the task running for good (a lease keeper renewing for ever, its work's ``stop`` waiting on it)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)


class LeasedWork:
    """Work this process runs in the background, one piece per key, each under the key's lease."""

    def __init__(self, leases: Leases) -> None:
        self._leases = leases
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def running(self, key: str) -> bool:
        return key in self._tasks

    async def start(self, key: str, work: Callable[[], Awaitable[None]]) -> str | None:
        """Run ``work`` here under the key's lease: None once it runs here, else the owner that holds the lease.
        Errors of ``work`` are its own to record: here they are only logged."""
        if key in self._tasks:
            return None
        holder = await self._leases.acquire(key)
        if holder is not None:
            return holder
        if key in self._tasks:  # started by a concurrent call while we took the lease
            return None
        self._tasks[key] = asyncio.create_task(self._run(key, work), name=f"leased-{key}")
        return None

    async def _run(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.current_task()
        assert task is not None
        keeper = asyncio.create_task(self._keep(key, task))
        try:
            await work()
        except asyncio.CancelledError:
            log.warning("work %s stopped before its end", key)
        except Exception:
            log.exception("work %s failed", key)
        finally:
            await cancelled(keeper)
            with contextlib.suppress(Exception):
                await self._leases.release(key)
            self._tasks.pop(key, None)

    async def _keep(self, key: str, task: asyncio.Task[None]) -> None:
        """Renew the lease a third of its length before it ends; stop the work once it may be someone else's."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self._leases.seconds / 3)
            try:
                if not await self._leases.renew(key):
                    log.warning("lease of %s was lost; stopping the work", key)
                    task.cancel()
                    return
                renewed = time.monotonic()
            except Exception as exc:
                if time.monotonic() - renewed >= self._leases.seconds * 0.9:
                    log.warning("lease of %s could not be renewed in time (%r); stopping the work", key, exc)
                    task.cancel()
                    return

    async def stop(self, key: str) -> None:
        """Stop the work of ``key`` if it runs here (it gives its lease up)."""
        task = self._tasks.get(key)
        if task is not None:
            await cancelled(task)

    async def close(self) -> None:
        """Stop every piece of work (each gives its lease up, so another process may take it over at once)."""
        await asyncio.gather(*(cancelled(task) for task in list(self._tasks.values())))
