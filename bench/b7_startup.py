"""B7 — start-up: each service from exec to ready (``/readyz`` answers 200), started alone, then all six at once.

Alone is the goal's measure (a pod starting); the six started together on two cores show the contention
``make up`` and the tests see. NATS and PostgreSQL are already up, so readiness includes connecting,
creating streams and consumers, and (archiver) migrating the projection.
"""

from __future__ import annotations

import uuid

from bench.context import Context
from bench.report import Row
from bench.stats import Goal, Measure
from lc2backup.devstack import SERVICE_MODULES, NatsServer, ServiceProcess, ServiceSet

ID = "B7"
TITLE = "start-up, exec to /readyz 200"
WORDS = {5: "five", 6: "six", 7: "seven"}
SHARED = f"two cores shared by {WORDS[len(SERVICE_MODULES)]} starts"


async def run(ctx: Context) -> list[Row]:
    scratch = ctx.scratch("b7")
    server = NatsServer(scratch / "nats")
    server.start()
    try:
        env = {
            **ctx.stack.env(),
            "LC2_NATS__URL": server.url,
            "LC2_POSTGRES__DSN": ctx.stack.postgres.create_database(f"b7_{uuid.uuid4().hex[:8]}"),
            "LC2_LOG_LEVEL": "WARNING",
        }
        alone = {name: Measure("s") for name in SERVICE_MODULES}
        together = {name: Measure("s") for name in SERVICE_MODULES}
        for _ in range(ctx.sizes.repetitions):
            for name in SERVICE_MODULES:
                service = ServiceProcess(name, dict(env), scratch / "logs")
                try:
                    alone[name].add(service.start())
                finally:
                    service.stop()
            services = ServiceSet(env, scratch / "logs")
            try:
                for name, seconds in services.start().items():
                    together[name].add(seconds)
            finally:
                services.stop()
        rows = [Row(ID, f"{name}, started alone", alone[name], goal=Goal("value", "<=", 1.5)) for name in alone]
        rows += [
            Row(ID, f"{name}, all {WORDS[len(together)]} started at once", together[name], note=SHARED)
            for name in together
        ]
        return rows
    finally:
        server.stop()
