"""The embedded local stack (NATS, PostgreSQL, SeaweedFS; moto for the AWS tests, fake-gcs-server for GCP) and the service launcher,
on loopback only.
"""

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.fakegcs import FakeGcsServer
from lc2backup.devstack.moto import MotoServer
from lc2backup.devstack.nats import NatsServer
from lc2backup.devstack.ports import free_port
from lc2backup.devstack.postgres import PostgresServer
from lc2backup.devstack.processes import ManagedProcess
from lc2backup.devstack.seaweed import SeaweedS3
from lc2backup.devstack.services import SERVICE_MODULES, ServiceProcess, ServiceSet
from lc2backup.devstack.stack import PROJECTION_DATABASE, LocalStack

__all__ = [
    "FakeGcsServer",
    "PROJECTION_DATABASE",
    "SERVICE_MODULES",
    "LocalStack",
    "ManagedProcess",
    "MotoServer",
    "NatsServer",
    "PostgresServer",
    "SeaweedS3",
    "ServiceProcess",
    "ServiceSet",
    "StackError",
    "free_port",
]
