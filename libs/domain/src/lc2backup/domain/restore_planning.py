"""Intake's decision about a restore, pure: the plan resolved from the backup's fold, or every problem.

What is checked here needs only the log: the backup exists and Succeeded, the artefact the request needs is
restorable, the provider can restore here, the target is not the backup's source unless confirmed. What needs
the stores (metadata.json as written, an empty target) is the worker's validation, before it writes anything.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from lc2backup.domain.layout import BackupLayout
from lc2backup.domain.restoring import (
    ArtefactKind,
    DatabasePlan,
    DocumentLibraryPlan,
    RestorePlan,
    RestoreRequestSpec,
)
from lc2backup.domain.spec import Problem
from lc2backup.domain.state import BackupState

FIGURES_EXTENSION = "figures.json"


def _overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def default_database_name(source: str, restore_id: str, purpose: str) -> str:
    suffix = restore_id.replace("-", "")[:8]
    if purpose == "verification":
        return f"lc2verify_{suffix}"
    return f"{source[:50]}_r{suffix}"


def plan_restore(
    restore_id: str, spec: RestoreRequestSpec, backup: BackupState, restorers: Mapping[str, Collection[str]]
) -> RestorePlan | list[Problem]:
    """The plan of ``spec`` for the backup ``backup`` (its fold), or why it cannot be restored. ``restorers``:
    for each provider that can restore here, the artefacts it restores (``export``, ``snapshot``)."""
    restorable_providers = tuple(restorers)
    problems: list[Problem] = []
    field = "spec.backupId"
    if not backup.exists or backup.spec is None:
        return [Problem(field=field, message=f"backup {spec.backup_id} does not exist", type="not_found")]
    if backup.state != "Succeeded":
        return [
            Problem(
                field=field,
                message=f"backup {spec.backup_id} is {backup.state}: only a Succeeded backup can be restored",
                type="not_restorable",
            )
        ]
    bspec = backup.spec
    if bspec.provider not in restorable_providers:
        supported = ", ".join(sorted(restorable_providers)) or "none"
        return [
            Problem(
                field=field,
                message=f"backup {spec.backup_id} was made by provider {bspec.provider}, which cannot restore in this"
                f" installation yet (restores here: {supported})",
                type="provider_capability",
            )
        ]
    verification = spec.purpose == "verification"
    if verification and (spec.database.overwrite is not None or spec.document_library.merge):
        problems.append(
            Problem(
                field="spec.purpose",
                message="a verification restores into scratch targets only: overwrite and merge are not allowed",
                type="invalid",
            )
        )
    layout = BackupLayout.of(bspec, backup.backup_id)
    target = spec.target
    plan = RestorePlan(
        backup_id=backup.backup_id,
        provider=bspec.provider,
        project_id=bspec.project_id,
        environment=bspec.environment,
        target_project_id=target.project_id if target else bspec.project_id,
        target_environment=target.environment if target else bspec.environment,
        purpose=spec.purpose,
        keep_failed_hours=spec.keep_failed_hours,
        metadata_location=backup.metadata_location,
    )
    if spec.wants_database:
        database = _database_plan(restore_id, spec, backup, layout, restorers[bspec.provider], problems)
        plan = plan.model_copy(update={"database": database})
    if spec.wants_document_library:
        library = _document_library_plan(restore_id, spec, backup, layout, problems)
        plan = plan.model_copy(update={"document_library": library})
    return problems or plan


def _artefact(backup: BackupState, kinds: Collection[str]) -> tuple[ArtefactKind, str, str] | None:
    """(kind, location, format) of the artefact to restore: the portable export where it restores, else the
    managed snapshot; None when the backup holds nothing this provider restores."""
    export, snapshot = backup.database.export, backup.database.snapshot
    if "export" in kinds and export is not None and export.restorable and export.status == "succeeded":
        return "export", export.location, export.format
    if "snapshot" in kinds and snapshot is not None and snapshot.status == "available":
        return "snapshot", snapshot.location or snapshot.snapshot_id, "snapshot"
    return None


def _database_plan(
    restore_id: str,
    spec: RestoreRequestSpec,
    backup: BackupState,
    layout: BackupLayout,
    kinds: Collection[str],
    problems: list[Problem],
) -> DatabasePlan | None:
    assert backup.spec is not None
    artefact = _artefact(backup, kinds)
    if artefact is None:
        export, snapshot = backup.database.export, backup.database.snapshot
        what = f"its export is {export.format}, which does not restore into a database" if export else "no export"
        hint = f"; its snapshot {snapshot.snapshot_id} restores with the cloud's own tools" if snapshot else ""
        problems.append(
            Problem(
                field="spec.include",
                message=f"backup {backup.backup_id} has no database artefact this installation restores ({what}{hint}):"
                " restore only the documentLibrary",
                type="not_restorable",
            )
        )
        return None
    kind, location, fmt = artefact
    source_instance = backup.spec.database.instance_id
    source_database = backup.spec.database.database_name
    wanted = spec.database
    suffix = restore_id.replace("-", "")[:8]
    if kind == "snapshot":  # a managed restore makes a new instance holding every database of the snapshot
        target_instance = wanted.instance_id or f"{source_instance.rsplit('/', 1)[-1][:40]}-r{suffix}"
        name = wanted.database_name or source_database or "postgres"
        if wanted.overwrite is not None or target_instance == source_instance:
            problems.append(
                Problem(
                    field="spec.database.instanceId",
                    message=f"a snapshot restores into a new instance, never over {source_instance}: name a new"
                    " instance (or none), then switch the environment over to it",
                    type="confirmation",
                )
            )
    else:
        target_instance = wanted.instance_id or source_instance
        name = wanted.database_name or default_database_name(source_database or "db", restore_id, spec.purpose)
    target = f"{target_instance}/{name}"
    is_source = kind == "export" and target_instance == source_instance and name == source_database
    if kind == "export" and wanted.overwrite is not None and wanted.overwrite.confirm != target:
        problems.append(
            Problem(
                field="spec.database.overwrite.confirm",
                message=f"must name the target exactly: {target}",
                type="confirmation",
            )
        )
    elif is_source and wanted.overwrite is None:
        problems.append(
            Problem(
                field="spec.database.databaseName",
                message=f"{target} is the backup's source database, live: replacing it needs overwrite.confirm:"
                f" {target}",
                type="confirmation",
            )
        )
    export, snapshot = backup.database.export, backup.database.snapshot
    if kind == "export":
        size, sha256 = (export.size_bytes, export.sha256) if export else (None, None)
    else:
        size, sha256 = (snapshot.size_bytes if snapshot else None), None
    figures = layout.uri(layout.database_key(source_database, FIGURES_EXTENSION)) if source_database else None
    return DatabasePlan(
        kind=kind,
        artefact=location,
        format=fmt,
        sha256=sha256,
        size_bytes=size,
        source_instance=source_instance,
        source_database=source_database,
        target_instance=target_instance,
        target_database=name,
        overwrite=wanted.overwrite is not None,
        figures=figures if kind == "export" else None,  # where a dump records them (the local provider's)
    )


def _document_library_plan(
    restore_id: str, spec: RestoreRequestSpec, backup: BackupState, layout: BackupLayout, problems: list[Problem]
) -> DocumentLibraryPlan | None:
    assert backup.spec is not None
    dl = backup.spec.document_library
    counters = backup.document_library.counters
    wanted = spec.document_library
    suffix = restore_id.replace("-", "")[:8]
    if spec.purpose == "verification":
        bucket = wanted.bucket or dl.destination_bucket
        prefix = wanted.prefix or f"{dl.destination_prefix}lc2-verify/{restore_id}/"
    else:
        bucket = wanted.bucket or dl.source_bucket
        prefix = wanted.prefix or f"{dl.source_prefix.rstrip('/') or 'documentlibrary'}.restore-{suffix}/"
    if bucket == dl.destination_bucket and _overlaps(prefix, layout.root):
        problems.append(
            Problem(
                field="spec.documentLibrary.prefix",
                message=f"s3://{bucket}/{prefix} overlaps the backup's own folder {layout.root}: choose another",
                type="overlap",
            )
        )
    if bucket == dl.source_bucket and _overlaps(prefix, dl.source_prefix) and not wanted.merge:
        problems.append(
            Problem(
                field="spec.documentLibrary.prefix",
                message=f"{bucket}/{prefix} is (inside) the backup's source document library, live: copying into it"
                " needs merge: true",
                type="confirmation",
            )
        )
    return DocumentLibraryPlan(
        source_bucket=layout.bucket,
        source_prefix=layout.document_library_prefix,
        manifest_key=layout.manifest_key,
        objects=counters.objects_copied,
        bytes=counters.bytes_copied,
        target_bucket=bucket,
        target_prefix=prefix,
        merge=wanted.merge,
        account=layout.account,
        scheme=layout.scheme,
    )
