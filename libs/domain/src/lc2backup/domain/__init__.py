"""The backup domain: the BackupRequest spec, the events of a backup, the pure fold, artefact layout.

Pure: nothing here does I/O, so its tests need no servers.
"""

from lc2backup.domain import events as events
from lc2backup.domain.commands import (
    MAX_COMMAND_BYTES,
    CommandUnreadable,
    Intake,
    RequestBackup,
    backup_id_for_request,
    backup_id_for_resource,
    manifest_problems,
    read_command,
)
from lc2backup.domain.events import EVENT_TYPES, RequestSource, TransferCounters, registry
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
    parse_spec,
)
from lc2backup.domain.state import BRANCH_ENDED, TERMINAL, BackupState, Phase, evolve, fold, initial

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
    "DatabaseSpec",
    "DocumentLibrarySpec",
    "Intake",
    "MetadataDocument",
    "Phase",
    "Problem",
    "RequestBackup",
    "RequestSource",
    "SpecInvalid",
    "TransferCounters",
    "backup_id_for_request",
    "backup_id_for_resource",
    "evolve",
    "fold",
    "generated_prefixes",
    "initial",
    "is_generated",
    "manifest_problems",
    "parse_spec",
    "read_command",
    "registry",
    "source_uri",
    "unsafe_key_reason",
]
