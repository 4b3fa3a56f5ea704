"""Least privilege on NATS: one user per service, allowed exactly the subjects that service uses.

Why here: the subjects come from the topology (stream, consumer, KV and event subject names), and the same
grants configure the embedded local stack (``lc2backup.devstack``) and the deployment's ``auth.conf``
(``contracts/nats/authorization.conf``, ``deploy/k8s/base/nats-auth.yaml``), so what the tests run with is
what is shipped. What each service needs:

* its JetStream API calls: ``STREAM.INFO`` and ``STREAM.CREATE`` of the three streams (creating an existing
  stream with another configuration is refused by the server; ``UPDATE`` only for the one stream manager,
  crd-gateway), ``DIRECT.GET`` on the event stream (loading a backup) and, for crd-gateway, on the command stream, ``CONSUMER.DURABLE.CREATE|INFO|MSG.NEXT``
  of *its own* durable consumers and their ack subjects ``$JS.ACK.<stream>.<durable>.>``;
* the event subjects of the event types it appends (``lc2.backup.evt.*.<Type>``) and its dead-letter subject;
* replies on its own inbox prefix ``_INBOX.<user>`` (never ``_INBOX.>``: it would read other clients' replies,
  which carry their consumers' deliveries).

Nothing grants ``STREAM.DELETE``, ``STREAM.PURGE`` or ``STREAM.MSG.DELETE`` to a service; ``admin`` (operators,
tests) may do anything and ``requester`` (people and CI publishing commands) may only publish commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lc2backup.domain.events import (
    RESTORE_EVENT_TYPES,
    BackupAdmitted,
    BackupFailed,
    BackupMetadataWritten,
    BackupQueued,
    BackupRejected,
    BackupRequested,
    BackupSucceeded,
    DatabaseBranchCancelled,
    DatabaseBranchFailed,
    DatabaseExportCompleted,
    DatabaseExportProgressed,
    DatabaseExportStarted,
    DatabaseSnapshotCompleted,
    DatabaseSnapshotStarted,
    DocumentLibraryTransferCancelled,
    DocumentLibraryTransferCompleted,
    DocumentLibraryTransferFailed,
    DocumentLibraryTransferProgressed,
    DocumentLibraryTransferStarted,
    RestoreAdmitted,
)
from lc2backup.domain.wire import DomainEvent
from lc2backup.eventing.topology import Topology

ADMIN = "admin"
REQUESTER = "requester"
STREAM_MANAGER = "crd-gateway"
INBOX_ROOT = "_INBOX"


def inbox_prefix(user: str) -> str:
    """The inbox prefix a user's connection must use (its replies arrive below it)."""
    return f"{INBOX_ROOT}.{user}"


@dataclass(frozen=True)
class ServiceAccess:
    """What one service does on NATS, in the topology's terms; event types by their classes."""

    consumers: tuple[tuple[str, str], ...] = ()  # (stream attribute of Topology, durable name)
    appends: tuple[type[DomainEvent], ...] = ()
    # durable -> the event types its consumer filters on (a durable not named here receives its whole stream)
    receives: Mapping[str, tuple[type[DomainEvent], ...]] = field(default_factory=dict)
    dead_letters: bool = False
    manages_streams: bool = False
    buckets: tuple[str, ...] = ()  # KV buckets (attributes of Topology): admission lanes, work leases
    # the command subjects it publishes on, as attributes of Topology (request_subject, restore_subject)
    sends_commands: tuple[str, ...] = ()
    reads_commands: bool = False  # DIRECT.GET on the command stream (crd-gateway keeps each lane in order)
    watches_events: bool = False  # a core subscription on every event (the archiver's wake-up)

    @property
    def appended_types(self) -> tuple[str, ...]:
        return tuple(cls.event_type for cls in self.appends)

    def received_types(self, durable: str) -> tuple[str, ...]:
        """The event types ``durable``'s consumer filters on; empty: it receives every message of its stream."""
        return tuple(cls.event_type for cls in self.receives.get(durable, ()))


# Event routing, declared once per service: the grants below, the services' consumer filters and the contracts'
# catalogue (asyncapi.yaml) are derived from it; the e2e suite runs every service with exactly these grants.
SERVICES: Mapping[str, ServiceAccess] = {
    "crd-gateway": ServiceAccess(
        consumers=(
            ("commands_stream", "crd-gateway-intake"),
            ("events_stream", "crd-gateway-admission"),
            ("events_stream", "crd-gateway-status"),
        ),
        appends=(BackupRequested, BackupRejected, BackupQueued, BackupAdmitted),
        receives={"crd-gateway-admission": (BackupRequested, BackupSucceeded, BackupFailed)},
        dead_letters=True,
        manages_streams=True,
        buckets=("lanes_bucket",),
        reads_commands=True,
        sends_commands=("restore_subject",),  # a RestoreRequest CR becomes a restore command for the restorer
    ),
    "db-export": ServiceAccess(
        consumers=(("events_stream", "db-export"),),
        appends=(
            DatabaseSnapshotStarted,
            DatabaseSnapshotCompleted,
            DatabaseExportStarted,
            DatabaseExportProgressed,
            DatabaseExportCompleted,
            DatabaseBranchFailed,
        ),
        receives={"db-export": (BackupAdmitted,)},
        dead_letters=True,
        buckets=("leases_bucket",),  # a local dump runs under a lease, outside any delivery
    ),
    "doclib-transfer": ServiceAccess(
        consumers=(("events_stream", "doclib-transfer"),),
        appends=(
            DocumentLibraryTransferStarted,
            DocumentLibraryTransferProgressed,
            DocumentLibraryTransferCompleted,
            DocumentLibraryTransferFailed,
        ),
        receives={"doclib-transfer": (BackupAdmitted,)},
        dead_letters=True,
    ),
    "metadata": ServiceAccess(
        consumers=(("events_stream", "metadata"),),
        appends=(
            BackupMetadataWritten,
            BackupSucceeded,
            DatabaseBranchCancelled,
            DocumentLibraryTransferCancelled,
            BackupFailed,
        ),
        # only branch outcomes and its own BackupMetadataWritten can change its decision
        receives={
            "metadata": (
                DatabaseExportCompleted,
                DatabaseBranchFailed,
                DocumentLibraryTransferCompleted,
                DocumentLibraryTransferFailed,
                BackupMetadataWritten,
            )
        },
        dead_letters=True,
    ),
    "restorer": ServiceAccess(
        consumers=(("commands_stream", "restorer-intake"), ("events_stream", "restorer")),
        appends=RESTORE_EVENT_TYPES,
        receives={"restorer": (RestoreAdmitted,)},
        dead_letters=True,
        buckets=("lanes_bucket", "leases_bucket"),  # one restore per target; a restore runs under a lease
    ),
    "archiver": ServiceAccess(sends_commands=("request_subject", "restore_subject"), watches_events=True),
}


@dataclass(frozen=True)
class Grant:
    """A NATS user's allow lists (everything else is denied)."""

    user: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    about: str = field(default="", compare=False)

    def permissions(self) -> dict[str, dict[str, list[str]]]:
        return {"publish": {"allow": list(self.publish)}, "subscribe": {"allow": list(self.subscribe)}}


def _streams(topology: Topology) -> tuple[str, ...]:
    return (topology.events_stream, topology.commands_stream, topology.dlq_stream)


def service_grant(user: str, access: ServiceAccess, topology: Topology) -> Grant:
    api = "$JS.API"
    publish: list[str] = [f"{api}.STREAM.{verb}.{s}" for verb in ("INFO", "CREATE") for s in _streams(topology)]
    if access.manages_streams:
        publish += [f"{api}.STREAM.UPDATE.{s}" for s in _streams(topology)]
    publish.append(f"{api}.DIRECT.GET.{topology.events_stream}")
    if access.reads_commands:
        publish.append(f"{api}.DIRECT.GET.{topology.commands_stream}")
    for attribute, durable in access.consumers:
        stream = getattr(topology, attribute)
        publish += [
            f"{api}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",  # nats-py's add_consumer of a durable
            f"{api}.CONSUMER.INFO.{stream}.{durable}",
            f"{api}.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    for attribute in access.buckets:
        bucket = getattr(topology, attribute)
        kv = f"KV_{bucket}"
        publish += [
            f"{api}.STREAM.INFO.{kv}",
            f"{api}.STREAM.CREATE.{kv}",
            f"{api}.STREAM.MSG.GET.{kv}",
            f"{api}.DIRECT.GET.{kv}.>",
            f"$KV.{bucket}.>",
        ]
    publish += [topology.event_subject("*", event_type) for event_type in access.appended_types]
    if access.dead_letters:
        publish.append(topology.dlq_subject(user))
    publish += [getattr(topology, attribute) for attribute in access.sends_commands]
    subscribe = [f"{inbox_prefix(user)}.>"]
    if access.watches_events:
        subscribe.append(topology.all_events)
    return Grant(user, tuple(publish), tuple(subscribe), about=f"the {user} service")


def grants(topology: Topology | None = None) -> dict[str, Grant]:
    """Every NATS user of an installation: the six services, ``admin`` and ``requester``."""
    topology = topology or Topology()
    out = {user: service_grant(user, access, topology) for user, access in SERVICES.items()}
    out[ADMIN] = Grant(ADMIN, (">",), (">",), about="operators and tests: everything")
    out[REQUESTER] = Grant(
        REQUESTER,
        (topology.request_subject, topology.restore_subject),
        (f"{inbox_prefix(REQUESTER)}.>",),
        about=f"people and CI: publish commands (connect with inbox prefix {inbox_prefix(REQUESTER)})",
    )
    return out


def password_variable(user: str) -> str:
    """The environment variable that holds a user's password in the deployment (``LC2_NATS_PASSWORD_DB_EXPORT``)."""
    return "LC2_NATS_PASSWORD_" + user.upper().replace("-", "_")


def render_authorization(grant_list: Mapping[str, Grant], password: Callable[[str], str]) -> str:
    """A nats-server ``authorization { users = [...] }`` block. ``password(user)`` returns the value as it must
    appear in the file: a quoted literal (``json.dumps``) or an environment reference (``$LC2_NATS_PASSWORD_…``).
    Subjects are quoted, so a ``$JS…`` subject is never read as a variable."""
    lines = ["authorization {", "  users = ["]
    for user, grant in grant_list.items():
        lines.append(f"    # {grant.about}")
        lines.append(f"    {{user: {json.dumps(user)}, password: {password(user)}, permissions: {{")
        for kind, subjects in (("publish", grant.publish), ("subscribe", grant.subscribe)):
            lines.append(f"      {kind}: {{allow: [")
            lines += [f"        {json.dumps(subject)}" for subject in subjects]
            lines.append("      ]}")
        lines.append("    }}")
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"
