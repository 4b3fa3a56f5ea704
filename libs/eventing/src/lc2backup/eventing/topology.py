"""Streams, subjects and consumers, created idempotently at start-up by every service that needs them.

A long-running cloud operation is polled through the service's own delivery of the event that started it
(``BackupRequested``): the handler naks it with a delay until the operation ends or its deadline passes, so
the poll is durable (the server redelivers it to whichever instance runs) and exactly one exists per backup.

Subjects (documented in ``contracts/asyncapi.yaml``):

* ``lc2.backup.evt.<backupId>.<EventType>``  the event log (stream LC2_BACKUP_EVENTS): a backup's history is
  ``lc2.backup.evt.<backupId>.*``, and a consumer can filter on the event types it acts on
* ``lc2.backup.cmd.request``             backup commands from users and the API (stream LC2_BACKUP_COMMANDS)
* ``lc2.backup.cmd.restore``             restore commands (same stream; a restore's events are its own aggregate
  on the event log, ``lc2.backup.evt.<restoreId>.<EventType>``)
* ``lc2.backup.dlq.<service>``           dead letters with the reason (stream LC2_BACKUP_DLQ)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from lc2backup.eventing.errors import TopologyError

DAY = 24 * 3600
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topology:
    """Names and durability of every stream. Storage, replicas and deny-delete/purge are configuration."""

    events_stream: str = "LC2_BACKUP_EVENTS"
    commands_stream: str = "LC2_BACKUP_COMMANDS"
    dlq_stream: str = "LC2_BACKUP_DLQ"
    lanes_bucket: str = "LC2_BACKUP_LANES"
    leases_bucket: str = "LC2_BACKUP_LEASES"
    prefix: str = "lc2.backup"
    storage: StorageType = StorageType.FILE
    replicas: int = 1
    deny_delete: bool = True
    deny_purge: bool = True
    duplicate_window: float = 120.0
    max_event_bytes: int = 256 * 1024
    max_command_bytes: int = 1024 * 1024
    dlq_max_age: float = 30 * DAY

    def event_subject(self, backup_id: str, event_type: str) -> str:
        return f"{self.prefix}.evt.{backup_id}.{event_type}"

    def backup_subjects(self, backup_id: str) -> str:
        """Every event of one backup: what a load reads and what an append's expected sequence guards."""
        return f"{self.prefix}.evt.{backup_id}.*"

    def events_of_type(self, *event_types: str) -> tuple[str, ...]:
        return tuple(f"{self.prefix}.evt.*.{t}" for t in event_types)

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.evt.>"

    @property
    def request_subject(self) -> str:
        return f"{self.prefix}.cmd.request"

    @property
    def restore_subject(self) -> str:
        return f"{self.prefix}.cmd.restore"

    def dlq_subject(self, service: str) -> str:
        return f"{self.prefix}.dlq.{service}"

    def backup_id_of(self, subject: str) -> str:
        """The backup id token of an event subject (``<prefix>.evt.<backupId>.<EventType>``)."""
        return subject.split(".")[self.prefix.count(".") + 2]

    def stream_configs(self) -> list[StreamConfig]:
        return [
            StreamConfig(
                name=self.events_stream,
                subjects=[self.all_events],
                retention=RetentionPolicy.LIMITS,
                deny_delete=self.deny_delete,
                deny_purge=self.deny_purge,
                allow_direct=True,
                duplicate_window=self.duplicate_window,
                max_msg_size=self.max_event_bytes,
                description="LC2 Backup event log: one subject per backup, the source of truth",
                storage=self.storage,
                num_replicas=self.replicas,
            ),
            StreamConfig(
                name=self.commands_stream,
                subjects=[f"{self.prefix}.cmd.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                allow_direct=True,  # crd-gateway reads the commands still waiting, to keep each lane in order
                duplicate_window=self.duplicate_window,
                max_msg_size=self.max_command_bytes,
                discard=DiscardPolicy.NEW,
                description="LC2 Backup commands (BackupRequest intake)",
                storage=self.storage,
                num_replicas=self.replicas,
            ),
            StreamConfig(
                name=self.dlq_stream,
                subjects=[f"{self.prefix}.dlq.>"],
                retention=RetentionPolicy.LIMITS,
                max_age=self.dlq_max_age,
                description="LC2 Backup dead letters: the message and the reason it was refused",
                storage=self.storage,
                num_replicas=self.replicas,
            ),
        ]


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer on one or more subject filters. Retry policy lives here and in the handler's
    RetryLater delays."""

    stream: str
    durable: str
    filter_subjects: tuple[str, ...]
    ack_wait: float = 30.0
    max_deliver: int = -1
    max_ack_pending: int = 10_000
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.filter_subjects[0] if len(self.filter_subjects) == 1 else None,
            filter_subjects=list(self.filter_subjects) if len(self.filter_subjects) > 1 else None,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            deliver_policy=self.deliver_policy,
            description=self.description or None,
        )


# num_replicas too: a stream created at R1 must not silently stay R1 once the setting says 3 (on a server
# that cannot place the replicas the update fails, and the service refuses to start, loudly).
_UPDATABLE = (
    "allow_direct",
    "deny_delete",
    "deny_purge",
    "duplicate_window",
    "max_msg_size",
    "max_age",
    "description",
    "num_replicas",
)


async def ensure_streams(js: JetStreamContext, topology: Topology, *, update: bool = True) -> None:
    """Create every stream, or bring an existing one to the configured (updatable) settings.

    ``update=False`` (every service but the stream manager, whose NATS user alone may update streams): a
    missing stream is still created (creating is harmless: the server refuses to create an existing stream with
    another configuration), an existing one is left as it is.
    """
    for config in topology.stream_configs():
        assert config.name is not None
        try:
            info = await js.stream_info(config.name)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except APIError as exc:
                if exc.err_code != 10058:  # created concurrently by another service: fine
                    raise TopologyError(f"cannot create stream {config.name}: {exc.description}") from exc
            continue
        current = info.config
        if any(getattr(current, name) != getattr(config, name) for name in _UPDATABLE):
            if not update:
                log.info("stream %s differs from this service's settings; left to the stream manager", config.name)
                continue
            try:
                await js.update_stream(config)
            except APIError as exc:
                raise TopologyError(f"cannot update stream {config.name}: {exc.description}") from exc


async def ensure_lanes(js: JetStreamContext, topology: Topology) -> KeyValue:
    """The KV bucket of admission lanes (one key per project+environment), created on first use."""
    return await _ensure_bucket(
        js, topology, topology.lanes_bucket, "LC2 Backup admission lanes: the active backup and its queue per lane"
    )


async def ensure_leases(js: JetStreamContext, topology: Topology) -> KeyValue:
    """The KV bucket of work leases (``lc2backup.eventing.leases``), created on first use."""
    return await _ensure_bucket(
        js, topology, topology.leases_bucket, "LC2 Backup leases: which process runs a piece of work, until when"
    )


async def _ensure_bucket(js: JetStreamContext, topology: Topology, bucket: str, description: str) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=bucket, history=1, storage=topology.storage, replicas=topology.replicas, description=description
        )
        try:
            return await js.create_key_value(config)
        except APIError as exc:
            raise TopologyError(f"cannot create KV bucket {bucket}: {exc.description}") from exc


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> None:
    try:
        await js.add_consumer(spec.stream, spec.config())
    except APIError as exc:
        raise TopologyError(f"cannot create consumer {spec.durable} on {spec.stream}: {exc.description}") from exc
