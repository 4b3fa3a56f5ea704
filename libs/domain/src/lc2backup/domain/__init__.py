"""The backup domain: the BackupRequest spec, the events of a backup, the pure fold, artefact layout.

Pure: nothing here does I/O, so its tests need no servers. Importing it loads neither nats nor opentelemetry
(``tests/domain/test_pure.py``); ``lc2backup.eventing`` stores and delivers what ``wire`` defines.
"""

from lc2backup.domain import events as events
from lc2backup.domain.commands import (
    MAX_COMMAND_BYTES,
    CommandUnreadable,
    Intake,
    RequestBackup,
    Submission,
    backup_id_for_manifest,
    backup_id_for_request,
    backup_id_for_resource,
    manifest_problems,
    manifest_request_id,
    parse_intake,
    project_request_id,
    read_command,
)
from lc2backup.domain.errors import DecodeError, UnknownEventType, WireError
from lc2backup.domain.events import EVENT_TYPES, RequestSource, TransferCounters, TransferPosition, registry
from lc2backup.domain.figures import DatabaseFigures, TableFigure, compare_figures
from lc2backup.domain.layout import BackupLayout, source_uri, unsafe_key_reason
from lc2backup.domain.liferay import GENERATED_FOLDERS, generated_prefixes, is_generated
from lc2backup.domain.metadata import METADATA_SCHEMA_VERSION, MetadataDocument
from lc2backup.domain.spec import (
    API_GROUP,
    API_VERSION,
    KIND,
    PROVIDERS,
    BackupRequestSpec,
    DatabaseSpec,
    DocumentLibrarySpec,
    Problem,
    SpecInvalid,
    complete_spec,
    parse_spec,
)
from lc2backup.domain.state import BRANCH_ENDED, TERMINAL, BackupState, Phase, evolve, fold, initial
from lc2backup.domain.wire import DomainEvent, Envelope, EventRegistry, RecordedEvent, TraceContext, WireModel

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "BRANCH_ENDED",
    "EVENT_TYPES",
    "GENERATED_FOLDERS",
    "KIND",
    "MAX_COMMAND_BYTES",
    "METADATA_SCHEMA_VERSION",
    "PROVIDERS",
    "TERMINAL",
    "BackupLayout",
    "BackupRequestSpec",
    "BackupState",
    "CommandUnreadable",
    "DatabaseFigures",
    "DatabaseSpec",
    "DecodeError",
    "DocumentLibrarySpec",
    "DomainEvent",
    "Envelope",
    "EventRegistry",
    "Intake",
    "MetadataDocument",
    "Phase",
    "Problem",
    "RecordedEvent",
    "RequestBackup",
    "RequestSource",
    "SpecInvalid",
    "Submission",
    "TableFigure",
    "TraceContext",
    "TransferCounters",
    "TransferPosition",
    "UnknownEventType",
    "WireError",
    "WireModel",
    "backup_id_for_manifest",
    "backup_id_for_request",
    "backup_id_for_resource",
    "compare_figures",
    "complete_spec",
    "evolve",
    "fold",
    "generated_prefixes",
    "initial",
    "is_generated",
    "manifest_problems",
    "manifest_request_id",
    "parse_intake",
    "parse_spec",
    "project_request_id",
    "read_command",
    "registry",
    "source_uri",
    "unsafe_key_reason",
]
