"""BackupRequest validation: every problem with its field path; the same rules for every entry point."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lc2backup.domain import (
    BackupRequestSpec,
    SpecInvalid,
    backup_id_for_manifest,
    backup_id_for_request,
    backup_id_for_resource,
    complete_spec,
    manifest_request_id,
    parse_intake,
    parse_spec,
    project_request_id,
    read_command,
)
from lc2backup.domain.commands import CommandUnreadable


def valid(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "projectId": "retail",
        "environment": "prd",
        "provider": "aws",
        "database": {"type": "snapshot", "instanceId": "retail-prd-db"},
        "documentLibrary": {
            "sourceBucket": "retail-prd-liferay-dl",
            "destinationBucket": "liferay-backups",
            "destinationPrefix": "retail/prd/20251109/",
            "excludeGeneratedFiles": True,
        },
        "retentionDays": 30,
    }
    spec.update(overrides)
    return spec


def problems(raw: Any) -> dict[str, str]:
    with pytest.raises(SpecInvalid) as info:
        parse_spec(raw)
    return {p.field: p.message for p in info.value.problems}


def test_the_original_documents_example_is_accepted() -> None:
    spec = parse_spec(valid())
    assert spec.document_library.source_prefix == "" and spec.retention_days == 30


def test_prefixes_are_normalised_to_end_with_a_slash() -> None:
    spec = parse_spec(
        valid(
            documentLibrary={
                "sourceBucket": "aaa",
                "destinationBucket": "bbb",
                "sourcePrefix": "store",
                "destinationPrefix": "retail/prd",
            }
        )
    )
    assert spec.document_library.source_prefix == "store/"
    assert spec.document_library.destination_prefix == "retail/prd/"


def test_every_problem_is_reported_with_its_path() -> None:
    found = problems(
        valid(
            projectId="Retail", provider="ibm", retentionDays="30", extra=1, database={"type": "copy", "instanceId": ""}
        )
    )
    assert set(found) == {
        "spec.projectId",
        "spec.provider",
        "spec.retentionDays",
        "spec.extra",
        "spec.database.type",
        "spec.database.instanceId",
    }
    assert "DNS label" in found["spec.projectId"]


def test_missing_fields_are_named() -> None:
    found = problems({"projectId": "retail"})
    assert {"spec.environment", "spec.provider", "spec.database", "spec.documentLibrary"} <= set(found)


@pytest.mark.parametrize(
    "prefix", ["/abs/path/", "a/../b/", "../up", "a//b/", "a/./b", "a\\b", "with space/", "x/\u0000/", "..", "."]
)
def test_unsafe_prefixes_are_refused(prefix: str) -> None:
    found = problems(
        valid(documentLibrary={"sourceBucket": "aaa", "destinationBucket": "bbb", "destinationPrefix": prefix})
    )
    assert "relative key prefix" in found["spec.documentLibrary.destinationPrefix"]


@pytest.mark.parametrize("bucket", ["", "ab", "UPPER", "a..b", "-lead", "trail-", "a_b", "x" * 64, "a.-b"])
def test_malformed_bucket_names_are_refused(bucket: str) -> None:
    found = problems(valid(documentLibrary={"sourceBucket": bucket, "destinationBucket": "bbb"}))
    assert "spec.documentLibrary.sourceBucket" in found


def test_cross_field_rules() -> None:
    found = problems(valid(provider="local"))
    assert "use database.type: dump" in found["spec.database.type"]
    found = problems(
        valid(
            documentLibrary={
                "sourceBucket": "same",
                "destinationBucket": "same",
                "sourcePrefix": "store/",
                "destinationPrefix": "store/backups/",
            }
        )
    )
    assert "overlaps" in found["spec.documentLibrary.destinationPrefix"]
    parse_spec(
        valid(
            documentLibrary={
                "sourceBucket": "same",
                "destinationBucket": "same",
                "sourcePrefix": "store/",
                "destinationPrefix": "backups/",
            }
        )
    )


def test_not_an_object() -> None:
    assert problems(["a list"]) == {"spec": "must be an object"}


def test_commands_name_their_backup_deterministically() -> None:
    a = read_command(b'{"requestId": "r-1", "spec": {}}', "m1")
    b = read_command(b'{"requestId": "r-1", "spec": {}}', "m2")
    assert a.backup_id == b.backup_id and a.problems == []
    explicit = read_command(b'{"backupId": "3f1e4c5a-0000-4000-8000-000000000001", "spec": {}}', "m1")
    assert explicit.backup_id == "3f1e4c5a-0000-4000-8000-000000000001"


def test_a_manifest_is_a_command_too() -> None:
    doc = (
        b'{"apiVersion": "backup.liferay.cloud/v1alpha1", "kind": "BackupRequest", '
        b'"metadata": {"name": "n", "namespace": "ns"}, "spec": {"projectId": "retail"}}'
    )
    intake = read_command(doc, "m1")
    assert intake.source.name == "n" and intake.spec == {"projectId": "retail"} and intake.problems == []
    assert read_command(doc, "m2").backup_id == intake.backup_id
    wrong = read_command(b'{"apiVersion": "v1", "kind": "Pod", "spec": {}}', "m1")
    assert {p.field for p in wrong.problems} == {"apiVersion", "kind"}


def test_command_shape_problems_are_reported() -> None:
    intake = read_command(b'{"backupId": "nope", "spec": {}, "surprise": 1}', "m1")
    assert {p.field for p in intake.problems} == {"command.backupId", "command.surprise"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected an object"),
        (b"x" * (64 * 1024 + 1), "too large"),
    ],
)
def test_unreadable_commands(raw: bytes, reason: str) -> None:
    with pytest.raises(CommandUnreadable, match=reason):
        read_command(raw, "m1")


def test_a_command_is_parsed_once_into_a_submission_carrying_the_spec() -> None:
    command = json.dumps(
        {"requestId": "r-1", "spec": valid(documentLibrary=valid()["documentLibrary"] | {"sourcePrefix": "s"})}
    )
    submission = parse_intake(read_command(command.encode(), "m1"))
    assert isinstance(submission.spec, BackupRequestSpec) and submission.problems == []
    assert submission.spec.document_library.source_prefix == "s/"  # normalised by the one parse
    assert (submission.project_id, submission.environment) == ("retail", "prd")


def test_a_submission_lists_shape_problems_before_the_specs() -> None:
    doc = {"apiVersion": "v1", "kind": "BackupRequest", "metadata": {"name": "n"}, "spec": {"projectId": "Nope"}}
    submission = parse_intake(read_command(json.dumps(doc).encode(), "m1"))
    assert submission.spec is None and [p.field for p in submission.problems] == ["apiVersion"]
    assert "spec.projectId" in {p.field for p in submission.spec_problems}  # the CLI lists both at once
    assert submission.project_id == "Nope"


def test_the_intake_trusts_no_command_it_did_not_parse_itself() -> None:
    """A command claiming to come from the API is parsed like any other: the command stream is a boundary."""
    forged = {"backupId": "3f1e4c5a-0000-4000-8000-000000000001", "spec": valid(retentionDays=0)}
    forged["source"] = {"kind": "api", "commandId": "x"}
    submission = parse_intake(read_command(json.dumps(forged).encode(), "m1"))
    assert submission.spec is None and [p.field for p in submission.problems] == ["spec.retentionDays"]


def test_an_api_body_validated_as_a_model_gets_the_same_answer_as_the_intake() -> None:
    """``complete_spec`` (the API, after its framework validated the body) and ``parse_spec`` (every other entry
    point) normalise alike and refuse a cross-field problem with the same problems."""
    overlap = valid(documentLibrary={"sourceBucket": "same", "destinationBucket": "same", "sourcePrefix": "a"})
    model = BackupRequestSpec.model_validate(overlap)
    with pytest.raises(SpecInvalid) as api:
        complete_spec(model)
    with pytest.raises(SpecInvalid) as intake:
        parse_spec(overlap)
    assert api.value.problems == intake.value.problems != []
    fine = valid(documentLibrary=valid()["documentLibrary"] | {"sourcePrefix": "s"})
    assert complete_spec(BackupRequestSpec.model_validate(fine)) == parse_spec(fine)


def test_one_manifest_is_one_backup_through_nats_the_api_and_the_cli_but_a_cr_is_its_own() -> None:
    """docs/requests.md. The id the intake gives a manifest published on NATS is the id the API gives a POST of
    its spec with the CLI's Idempotency-Key; another project's manifest of the same name is another backup; a
    BackupRequest CR (kubectl) is named by its uid, so it is a backup of its own."""
    doc = {"apiVersion": "backup.liferay.cloud/v1alpha1", "kind": "BackupRequest", "spec": valid()}
    doc["metadata"] = {"name": "nightly", "namespace": "ops"}
    published = read_command(json.dumps(doc).encode(), "m1").backup_id
    posted = backup_id_for_request(project_request_id("retail", manifest_request_id("ops", "nightly")))
    assert published == posted == backup_id_for_manifest("retail", "ops", "nightly")
    other_project = doc | {"spec": valid(projectId="outlet")}
    assert read_command(json.dumps(other_project).encode(), "m1").backup_id != published
    as_cr = doc | {"metadata": {"name": "nightly", "namespace": "ops", "uid": "6a1c…"}}
    assert read_command(json.dumps(as_cr).encode(), "m1").backup_id == backup_id_for_resource("6a1c…") != published
