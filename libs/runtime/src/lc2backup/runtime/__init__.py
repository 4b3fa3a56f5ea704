"""Service runtime: settings, lifecycle and ordered shutdown, logging with redaction, tracing, health, crash points."""

from lc2backup.runtime.connections import connect_nats
from lc2backup.runtime.crashpoints import arm_from_env, crash_point
from lc2backup.runtime.health import HealthServer, ReadinessCheck
from lc2backup.runtime.lifecycle import TaskGroupStopper, run
from lc2backup.runtime.locks import KeyedLocks
from lc2backup.runtime.logs import configure_logging
from lc2backup.runtime.redaction import redact
from lc2backup.runtime.scaffold import ServiceScaffold, scaffold
from lc2backup.runtime.settings import (
    ConsumerSettings,
    HealthSettings,
    NatsSettings,
    ServiceSettings,
    StateCacheSettings,
    StreamSettings,
)
from lc2backup.runtime.telemetry import configure_tracing

__all__ = [
    "KeyedLocks",
    "ConsumerSettings",
    "HealthServer",
    "HealthSettings",
    "NatsSettings",
    "ReadinessCheck",
    "ServiceScaffold",
    "ServiceSettings",
    "StateCacheSettings",
    "StreamSettings",
    "TaskGroupStopper",
    "arm_from_env",
    "configure_logging",
    "configure_tracing",
    "connect_nats",
    "crash_point",
    "redact",
    "run",
    "scaffold",
]
