"""crd-gateway's composition root: the NATS command intake, and (when enabled) the Kubernetes side.

Kubernetes side: one list+watch loop per kind (BackupRequest, RestoreRequest) and configured namespace (or one
per kind for all), feeding new BackupRequests into the same intake as NATS commands and turning new
RestoreRequests into restore commands, and the durable ``crd-gateway-status`` consumer projecting every backup
and restore event onto its CR's status. Shutdown: ``stop`` ends the watches and the consumers' pulls, in-flight
handlers finish, then the Kubernetes client closes, and NATS drains last (in the scaffold).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from lc2backup.crd_gateway.admission import Admission
from lc2backup.crd_gateway.handlers import IntakeHandler
from lc2backup.crd_gateway.ordering import LaneOrder
from lc2backup.crd_gateway.settings import Settings
from lc2backup.domain import registry
from lc2backup.domain.events import BackupRequested
from lc2backup.eventing import DirectReader, ensure_lanes
from lc2backup.eventing.permissions import SERVICES
from lc2backup.runtime import ReadinessCheck, ServiceScaffold, TaskGroupStopper, scaffold

if TYPE_CHECKING:
    from lc2backup.crd_gateway.watching import Watcher

NAME = "crd-gateway"
STATUS_CONSUMER = "crd-gateway-status"
ADMISSION_CONSUMER = "crd-gateway-admission"
INTAKE_CONSUMER = "crd-gateway-intake"


async def _start_kubernetes(
    settings: Settings,
    parts: ServiceScaffold,
    intake: IntakeHandler,
    group: TaskGroupStopper,
    stack: contextlib.AsyncExitStack,
) -> list[Watcher]:
    # Imported here: the Kubernetes client takes ~1 s and ~50 MB to import, and NATS-only deployments (and the
    # local stack) never need it (benchmark B7).
    from lc2backup.crd_gateway.kube import open_api
    from lc2backup.crd_gateway.reconciling import BackupRequests, Reconciler, Requests
    from lc2backup.crd_gateway.recording import EventRecorder
    from lc2backup.crd_gateway.restoring import RestoreRequests
    from lc2backup.crd_gateway.status import BACKUPS, RESTORES, StatusProjector, StatusRouter
    from lc2backup.crd_gateway.watching import Watcher

    k8s = settings.kubernetes
    api = await stack.enter_async_context(open_api(k8s))
    recorder = EventRecorder(api, enabled=k8s.events)
    delay = k8s.status_retry_seconds
    backups = StatusProjector(parts.store, api, recorder, BACKUPS, retry_delay=delay)
    restores = StatusProjector(parts.store, api, recorder, RESTORES, retry_delay=delay)
    router = StatusRouter(parts.store, backups, restores, retry_delay=delay)
    events = parts.consumer(parts.topology.events_stream, STATUS_CONSUMER, parts.topology.all_events)
    group.start("status", parts.runner(events, router.on_event, concurrency=k8s.status_concurrency).run(parts.stop))
    kinds: list[Requests] = [BackupRequests(intake, backups), RestoreRequests(parts.js, parts.topology, restores)]
    scopes: list[str | None] = [*k8s.namespaces] or [None]
    watchers = [
        Watcher(
            api,
            requests.resource,
            namespace,
            Reconciler(requests).on_watch_event,
            backoff_initial=k8s.backoff_initial_seconds,
            backoff_max=k8s.backoff_max_seconds,
        )
        for requests in kinds
        for namespace in scopes  # None: every namespace
    ]
    for watcher in watchers:
        group.start(f"watch {watcher.scope}", watcher.run(parts.stop))
    return watchers


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with scaffold(NAME, settings, stop, registry()) as parts, contextlib.AsyncExitStack() as stack:
        topology = parts.topology
        intake = IntakeHandler(parts.store)
        commands = parts.consumer(topology.commands_stream, INTAKE_CONSUMER, topology.request_subject)
        command_reader = DirectReader(parts.nc, topology.commands_stream)
        stack.push_async_callback(command_reader.close)
        intake.keep_order(
            LaneOrder(
                parts.js,
                command_reader,
                durable=INTAKE_CONSUMER,
                subject=topology.request_subject,
                lane_of=intake.lane_of_stored,
                took_effect=intake.recorded,
            )
        )
        group = TaskGroupStopper(stop)
        # A readable command always ends in an event: a failure is an outage, never poison, and giving up would
        # lose the request (and a command waiting for an earlier one of its lane is handed back many times).
        intake_runner = parts.runner(
            commands, intake.on_command, concurrency=settings.intake_concurrency, max_error_attempts=1_000_000
        )
        group.start("intake", intake_runner.run(stop))
        admission = Admission(parts.store, await ensure_lanes(parts.js, parts.topology))
        lanes = parts.consumer(
            parts.topology.events_stream,
            ADMISSION_CONSUMER,
            *parts.topology.events_of_type(*SERVICES[NAME].received_types(ADMISSION_CONSUMER)),
        )
        admission.keep_order(
            LaneOrder(
                parts.js,
                parts.store.reader,
                durable=ADMISSION_CONSUMER,
                subject=topology.event_subject("*", BackupRequested.event_type),
                lane_of=admission.requested_lane,
                took_effect=admission.entered,
            )
        )
        # Lanes concurrently, each lane's entries in stream order (the queue order is the request order).
        # A readable event that keeps failing here is an outage (KV, the event log), never poison: giving up
        # would block its lane for good, so it is retried (at most every minute) instead of dead-lettered.
        admitting = parts.runner(
            lanes, admission.on_event, concurrency=settings.admission_concurrency, max_error_attempts=1_000_000
        )
        group.start("admission", admitting.run(stop))
        readiness: ReadinessCheck = parts.nats_ready
        if settings.kubernetes.enabled:
            watchers = await _start_kubernetes(settings, parts, intake, group, stack)

            async def ready() -> dict[str, bool]:
                return {**await parts.nats_ready(), "kubernetes": all(w.synced for w in watchers)}

            readiness = ready
        async with parts.serving_health(readiness):
            await group.wait()
