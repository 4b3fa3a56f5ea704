"""metadata.json against its published contract: what the metadata service writes conforms to
``contracts/metadata.v1.schema.json``, and the contract is strict enough to refuse what a restorer could not use.

The e2e, faults, aws and k8s suites check every metadata.json they read with the same helper
(``tests.metadata_json``); these tests are its controls, on documents built from a fold, without servers.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lc2backup.domain import MetadataDocument, TransferCounters
from lc2backup.domain import events as ev
from lc2backup.metadata import domain as md
from tests.domain.test_fold import SOURCE, SPEC, state_after
from tests.metadata_json import SCHEMA, metadata_problems, read_metadata_json

REQUESTED = ev.BackupRequested(spec=SPEC, source=SOURCE)
BRANCHES_DONE = (
    ev.BackupAdmitted(),
    ev.DatabaseSnapshotStarted(snapshot_id="snap-1", instance_id="db1"),
    ev.DatabaseSnapshotCompleted(snapshot_id="snap-1", location="arn:aws:rds:x", size_bytes=5, engine="postgres"),
    ev.DatabaseExportStarted(operation_id="op", location="s3://b/e/", format="parquet", restorable=False),
    ev.DocumentLibraryTransferStarted(
        job_id="j", method="server-side copy", source="s3://s/", destination="s3://d/", exclude_generated_files=True
    ),
    ev.DatabaseExportCompleted(location="s3://b/e/", format="parquet", restorable=False, extracted_gb=3.0),
    ev.DocumentLibraryTransferCompleted(
        counters=TransferCounters(objects_found=3, objects_copied=2, objects_excluded=1, listing_complete=True),
        manifest_location="s3://d/m.jsonl",
    ),
)


def written() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(md.metadata_document(state_after(REQUESTED, *BRANCHES_DONE)).render())
    return document


def test_what_the_metadata_service_writes_conforms_to_the_contract() -> None:
    document = read_metadata_json(md.metadata_document(state_after(REQUESTED, *BRANCHES_DONE)).render())
    assert document["database"]["snapshot"]["location"] == "arn:aws:rds:x"
    assert document["documentLibrary"]["objectsExcluded"] == 1 and document["schemaVersion"] == 1
    # A dump without a snapshot, a copy without a manifest: the unknowns are null, still conforming.
    dump_only = state_after(
        REQUESTED,
        ev.BackupAdmitted(),
        ev.DatabaseExportCompleted(location="s3://b/d.dump", format="pg_dump", restorable=True, sha256="a" * 64),
        ev.DocumentLibraryTransferCompleted(counters=TransferCounters()),
    )
    assert read_metadata_json(md.metadata_document(dump_only).render())["documentLibrary"]["manifest"] is None
    # A spec that names no database (the instance's own): the document says null, it does not fail to render.
    unnamed = SPEC.model_copy(update={"database": SPEC.database.model_copy(update={"database_name": None})})
    no_name = state_after(ev.BackupRequested(spec=unnamed, source=SOURCE), *BRANCHES_DONE)
    assert read_metadata_json(md.metadata_document(no_name).render())["database"]["databaseName"] is None


def test_a_restorer_reads_it_back_with_the_same_model() -> None:
    body = md.metadata_document(state_after(REQUESTED, *BRANCHES_DONE)).render()
    assert MetadataDocument.model_validate_json(body).render() == body


@pytest.mark.parametrize(
    "path",
    [("backupId",), ("location",), ("database", "export"), ("documentLibrary", "objectsCopied"), ("producer",)],
)
def test_the_contract_refuses_a_document_missing_a_required_key(path: tuple[str, ...]) -> None:
    document = written()
    assert metadata_problems(document) == []  # control: the same document, whole, conforms
    broken = copy.deepcopy(document)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    problems = metadata_problems(broken)
    assert any(f"'{path[-1]}' is a required property" in p for p in problems), problems
    with pytest.raises(AssertionError, match=SCHEMA.name):
        read_metadata_json(json.dumps(broken).encode())


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (("database", "unknownKey"), 1, "Additional properties are not allowed"),
        (("completedAt",), "yesterday", "is not a 'date-time'"),
        (("documentLibrary", "objectsCopied"), -1, "less than the minimum"),
        (("database", "export", "sha256"), "not-hex", "does not match"),
        (("schemaVersion",), 2, "1 was expected"),
    ],
)
def test_the_contract_refuses_keys_types_and_formats_it_does_not_describe(
    path: tuple[str, ...], value: object, says: str
) -> None:
    document = written()
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    problems = metadata_problems(document)
    assert any(says in p for p in problems), problems
