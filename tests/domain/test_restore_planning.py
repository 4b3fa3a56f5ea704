"""Intake's restore plan, decided from a backup's fold alone: what is restored from where, and every refusal."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pytest

from lc2backup.domain import BackupState, parse_spec
from lc2backup.domain.restore_planning import plan_restore
from lc2backup.domain.restoring import RestorePlan, parse_restore_spec
from lc2backup.domain.state import DatabaseBranch, ExportInfo, SnapshotInfo
from tests.support import cloud_spec, local_spec

RESTORE = str(uuid.UUID(int=0xABCDEF12 << 96))
BACKUP = str(uuid.UUID(int=7))
LOCAL = {"local": frozenset({"export"})}


def _backup(provider: str = "local", state: str = "Succeeded", **database: object) -> BackupState:
    raw = (
        local_spec("src", "dst", database_name="lportal")
        if provider == "local"
        else cloud_spec(provider, "db-1", "lportal", "src", "dst")
    )
    raw["documentLibrary"]["sourcePrefix"] = "liferay/"
    export = ExportInfo(
        operation_id="x",
        status="succeeded",
        location=f"s3://dst/{BACKUP}/database/lportal.dump",
        format="postgresql-custom",
        restorable=True,
        sha256="a" * 64,
        size_bytes=10,
    )
    branch = DatabaseBranch(state="Completed", **({"export": export} | database))  # type: ignore[arg-type]
    return BackupState(
        backup_id=BACKUP,
        state=state,
        exists=True,
        spec=parse_spec(raw),
        database=branch,  # type: ignore[arg-type]
        metadata_location=f"s3://dst/{BACKUP}/metadata.json",
    )


def _plan(raw: dict[str, object], backup: BackupState, restorers: Mapping[str, frozenset[str]] = LOCAL) -> RestorePlan:
    plan = plan_restore(RESTORE, parse_restore_spec({"backupId": BACKUP, **raw}), backup, restorers)
    assert isinstance(plan, RestorePlan), plan
    return plan


def _problems(raw: dict[str, object], backup: BackupState, restorers: Mapping[str, frozenset[str]] = LOCAL) -> str:
    outcome = plan_restore(RESTORE, parse_restore_spec({"backupId": BACKUP, **raw}), backup, restorers)
    assert isinstance(outcome, list), outcome
    return "; ".join(f"{p.field}: {p.message}" for p in outcome)


def test_defaults_are_new_targets_named_after_the_restore() -> None:
    plan = _plan({}, _backup())
    assert plan.database is not None and plan.document_library is not None
    assert (plan.database.kind, plan.database.target_instance, plan.database.target_database) == (
        "export",
        "liferay-test",
        "lportal_rabcdef12",
    )
    assert (
        plan.database.sha256 == "a" * 64
        and plan.database.figures == f"s3://dst/backups/{BACKUP}/database/lportal.figures.json"
    )
    assert (plan.document_library.target_bucket, plan.document_library.target_prefix) == (
        "src",
        "liferay.restore-abcdef12/",
    )
    assert plan.document_library.source_prefix == f"backups/{BACKUP}/documentlibrary/"
    assert (plan.target_project_id, plan.target_environment) == ("retail", "dev")


def test_verification_targets_are_scratch() -> None:
    plan = _plan({"purpose": "verification"}, _backup())
    assert plan.database is not None and plan.document_library is not None
    assert plan.database.target_database == "lc2verify_abcdef12"
    assert (plan.document_library.target_bucket, plan.document_library.target_prefix) == (
        "dst",
        f"backups/lc2-verify/{RESTORE}/",
    )
    assert "overwrite and merge are not allowed" in _problems(
        {"purpose": "verification", "documentLibrary": {"merge": True}}, _backup()
    )


@pytest.mark.parametrize(
    ("backup", "restorers", "says"),
    [
        (BackupState(backup_id=BACKUP), LOCAL, "does not exist"),
        (_backup(state="Failed"), LOCAL, "is Failed: only a Succeeded backup can be restored"),
        (
            _backup(),
            {"aws": frozenset({"snapshot"})},
            "made by provider local, which cannot restore in this installation yet (restores here: aws)",
        ),
    ],
)
def test_refused_from_the_log(backup: BackupState, restorers: Mapping[str, frozenset[str]], says: str) -> None:
    assert says in _problems({}, backup, restorers)


def test_the_live_database_needs_its_exact_name_confirmed() -> None:
    live = {"database": {"databaseName": "lportal"}}
    assert "spec.database.databaseName: liferay-test/lportal is the backup's source database" in _problems(
        live, _backup()
    )
    wrong = {"database": {"databaseName": "lportal", "overwrite": {"confirm": "lportal"}}}
    assert "must name the target exactly: liferay-test/lportal" in _problems(wrong, _backup())
    plan = _plan({"database": {"databaseName": "lportal", "overwrite": {"confirm": "liferay-test/lportal"}}}, _backup())
    assert plan.database is not None and plan.database.overwrite


def test_document_library_targets_that_overlap_are_refused() -> None:
    assert "needs merge: true" in _problems({"documentLibrary": {"prefix": "liferay/"}}, _backup())
    assert _plan({"documentLibrary": {"prefix": "liferay/", "merge": True}}, _backup()).document_library is not None
    assert "overlaps the backup's own folder" in _problems(
        {"documentLibrary": {"bucket": "dst", "prefix": f"backups/{BACKUP}"}}, _backup()
    )


def test_a_parquet_export_is_not_restored_but_the_snapshot_is_into_a_new_instance() -> None:
    parquet = ExportInfo(
        operation_id="x", status="succeeded", location="s3://dst/export/", format="parquet", restorable=False
    )
    snapshot = SnapshotInfo(snapshot_id="lc2-snap", status="available", location="arn:aws:rds:snapshot:lc2-snap")
    backup = _backup("aws", export=parquet, snapshot=snapshot)
    assert "its export is parquet, which does not restore" in _problems({}, backup, {"aws": frozenset({"export"})})
    plan = _plan({}, backup, {"aws": frozenset({"snapshot"})})
    assert plan.database is not None
    assert (plan.database.kind, plan.database.artefact) == ("snapshot", "arn:aws:rds:snapshot:lc2-snap")
    assert (plan.database.target_instance, plan.database.target_database) == ("db-1-rabcdef12", "lportal")
    assert plan.database.figures is None
    assert "never over db-1" in _problems(
        {"database": {"instanceId": "db-1"}}, backup, {"aws": frozenset({"snapshot"})}
    )
    only_library = _plan({"include": "documentLibrary"}, backup, {"aws": frozenset()})
    assert only_library.database is None and only_library.document_library is not None
