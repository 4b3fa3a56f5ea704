"""Provider interfaces: one per capability. Implementations live in one module per cloud.

Database branch: ``start_snapshot`` / ``check_snapshot`` then ``start_export`` / ``check_export``. Cloud
providers start a managed operation under a deterministic name, each ``start_*`` returns the ``…Started``
event that records its reference, and ``check_*`` polls it once given what the fold made of that event; the local
provider moves the bytes itself inside ``check_export`` (reporting progress), since there is no managed
service to poll. Transfers follow the same start/check shape; our own copier runs one bounded slice per
``check_transfer`` and resumes from the position it recorded. No SDK type crosses these interfaces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from lc2backup.domain import BackupLayout, BackupRequestSpec, TransferCounters, TransferPosition
from lc2backup.domain.events import DatabaseExportStarted, DatabaseSnapshotStarted, DocumentLibraryTransferStarted
from lc2backup.domain.state import ExportInfo, SnapshotInfo, TransferInfo

COPIER_COUNTERS = TransferCounters.counts()
"""The counters our own copier fills: all of them (it lists, filters and copies each object itself)."""


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do — asked by the services instead of testing its name.

    ``moves_bytes``: the artefact's bytes pass through our process (a local dump), so a service bounds how many
    run at once. ``runs_here``: the work runs inside our process, a slice per poll, rather than as a managed job
    that is only polled. ``counters``: the ``TransferCounters`` fields it can fill; the others are unknown (a
    managed transfer service reports found/copied/bytes, not what our copier excluded or saw vanish).
    ``restorable``: the artefacts a restore can use (``snapshot``, ``export``).
    """

    moves_bytes: bool = False
    runs_here: bool = False
    counters: frozenset[str] = frozenset()
    restorable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BackupJob:
    backup_id: str
    spec: BackupRequestSpec
    layout: BackupLayout


@dataclass(frozen=True)
class SnapshotStatus:
    done: bool
    error: str | None = None
    location: str | None = None
    size_bytes: int | None = None
    engine: str | None = None
    engine_version: str | None = None
    percent: int | None = None


@dataclass(frozen=True)
class ExportStatus:
    done: bool
    error: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    percent: int | None = None
    bytes_written: int | None = None
    estimated_total_bytes: int | None = None
    engine: str | None = None
    engine_version: str | None = None
    extracted_gb: float | None = None


ExportProgress = Callable[[ExportStatus], Awaitable[None]]


class DatabaseBackupProvider(Protocol):
    name: str
    capabilities: Capabilities

    async def start_snapshot(self, job: BackupJob) -> DatabaseSnapshotStarted:
        """Start (or find, by its deterministic name) the managed snapshot; the event that records it."""
        ...

    async def check_snapshot(self, job: BackupJob, snapshot: SnapshotInfo) -> SnapshotStatus:
        """Poll the recorded snapshot once."""
        ...

    async def start_export(self, job: BackupJob, snapshot: SnapshotInfo | None) -> DatabaseExportStarted:
        """Start (or find) the export, of ``snapshot`` when the backup took one; the event that records it."""
        ...

    async def check_export(self, job: BackupJob, ref: ExportInfo, progress: ExportProgress) -> ExportStatus: ...


@dataclass(frozen=True)
class TransferStatus:
    """A transfer's state. ``position``: where our own copier stands (it resumes from there); a managed job
    has none. Also what ``check_transfer`` is given back as ``resume``: the last status recorded."""

    done: bool
    counters: TransferCounters
    error: str | None = None
    manifest_location: str | None = None
    position: TransferPosition | None = None


TransferProgress = Callable[[TransferCounters, TransferPosition | None], Awaitable[None]]
"""Records progress (an event); with a position, the counters are those at the position."""
BranchCheck = Callable[[], Awaitable[None]]
"""Raises ``OperationAborted`` when the branch no longer runs (cancelled, or its backup ended): work that runs
long inside one call (a copy) checks it while it works, not only before it starts."""


class DocumentTransferProvider(Protocol):
    name: str
    capabilities: Capabilities

    async def start_transfer(self, job: BackupJob) -> DocumentLibraryTransferStarted:
        """Start (or find, by its deterministic name) the transfer; the event that records its reference."""
        ...

    async def check_transfer(
        self,
        job: BackupJob,
        transfer: TransferInfo,
        progress: TransferProgress,
        still_running: BranchCheck | None = None,
        *,
        resume: TransferStatus | None = None,
        slice_seconds: float = 30.0,
    ) -> TransferStatus:
        """Poll the transfer once. Work done inside the call (our copier) stops after about ``slice_seconds``,
        records its position through ``progress`` and returns not done; the next call, given the last recorded
        status as ``resume``, goes on from there."""
        ...


@dataclass(frozen=True)
class PutOnceResult:
    created: bool
    location: str
    existing: bytes | None = None  # the body already there when ``created`` is False


class ArtifactStore(Protocol):
    name: str

    async def put_once(self, layout: BackupLayout, key: str, body: bytes, content_type: str) -> PutOnceResult:
        """Create ``key`` in the layout's bucket (container) only if it is absent; ``location`` is ``layout.uri(key)``."""
        ...
