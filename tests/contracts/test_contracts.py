"""contracts/ matches the code, is valid, and accepts (and refuses) what the code accepts (and refuses).

No servers: the schemas are checked with ``jsonschema`` (2020-12, with the generated files as its registry),
the samples are real instances of the pydantic models, serialized exactly as the event store does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pydantic
import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource

from lc2backup.contracts import DIALECT, ID_BASE, KEPT, all_artifacts, check, write
from lc2backup.contracts.__main__ import main
from lc2backup.contracts.catalogue import producers
from lc2backup.contracts.rendering import to_json
from lc2backup.contracts.schemas import (
    COMMAND_PATH,
    ENVELOPE_PATH,
    RESTORE_COMMAND_PATH,
    SPEC_PATH,
    event_path,
    event_schema,
)
from lc2backup.domain import EVENT_TYPES, parse_intake, read_command, registry
from lc2backup.domain.events import DatabaseBranchFailed
from lc2backup.domain.restoring import read_restore_command
from lc2backup.domain.wire import DomainEvent, Envelope, TraceContext, decode_envelope, encode_envelope, event_id
from tests.contracts.samples import (
    BACKUP_ID,
    COMMANDS,
    EVENT_SAMPLES,
    INVALID_COMMANDS,
    INVALID_PAYLOADS,
    INVALID_RESTORE_COMMANDS,
    RESTORE_COMMANDS,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
SAMPLE_MANIFEST = ROOT / "deploy" / "samples" / "backuprequest-local.yaml"
ARTIFACTS = all_artifacts()
SCHEMA_PATHS = sorted(a.path for a in ARTIFACTS if a.path.endswith(".schema.json"))
SAMPLES = [event for events in EVENT_SAMPLES.values() for event in events]


def _sample_id(event: DomainEvent) -> str:
    return f"{event.event_type}-{EVENT_SAMPLES[type(event)].index(event)}"


def _load(relative: str) -> Any:
    text = (CONTRACTS / relative).read_bytes().decode("utf-8")
    return yaml.safe_load(text) if relative.endswith(".yaml") else json.loads(text)


@pytest.fixture(scope="module")
def schemas() -> Registry[Any]:
    """Every committed schema, by its $id: how a consumer resolves the cross-file $refs."""
    resources = [Resource.from_contents(_load(path)) for path in SCHEMA_PATHS]
    return Registry().with_resources((r.contents["$id"], r) for r in resources)


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    doc: dict[str, Any] = _load("asyncapi.yaml")
    return doc


def validator(schema: dict[str, Any], schemas: Registry[Any], base: str = "") -> Draft202012Validator:
    if base:
        schema = {"$id": ID_BASE + base, **schema}
    return Draft202012Validator(schema, registry=schemas, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(schema: dict[str, Any], schemas: Registry[Any], instance: Any, base: str = "") -> list[str]:
    return [e.message for e in validator(schema, schemas, base).iter_errors(instance)]


# --- drift -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("artifact", ARTIFACTS, ids=lambda a: a.path)
def test_committed_file_is_what_the_code_generates(artifact: Any) -> None:
    committed = CONTRACTS / artifact.path
    assert committed.is_file(), f"contracts/{artifact.path} is missing: run `make contracts`"
    assert committed.read_bytes().decode("utf-8") == artifact.render(), (
        f"contracts/{artifact.path} differs from the code: run `make contracts` and review the diff"
    )


def test_contracts_has_no_missing_or_extra_files() -> None:
    drift = check(CONTRACTS)
    assert not drift, "\n".join(drift.lines())


def test_a_changed_model_changes_its_contract() -> None:
    class Changed(DatabaseBranchFailed):
        event_type: ClassVar[str] = DatabaseBranchFailed.event_type
        attempts: int = 1

    committed = (CONTRACTS / event_path(DatabaseBranchFailed)).read_bytes().decode("utf-8")
    assert to_json(event_schema(Changed)) != committed
    assert to_json(event_schema(DatabaseBranchFailed)) == committed


def test_every_event_type_has_its_schema_file_and_no_stale_ones() -> None:
    expected = {event_path(cls) for cls in EVENT_TYPES} | {p for p in KEPT if p.startswith("events/")}
    present = {f"events/{p.name}" for p in (CONTRACTS / "events").iterdir()}
    assert present == expected
    for cls in EVENT_TYPES:
        schema = _load(event_path(cls))
        assert (schema["x-event-type"], schema["x-schema-version"]) == (cls.event_type, cls.schema_version)


def test_check_and_write_report_changed_missing_and_extra(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert write(tmp_path).missing  # everything was missing
    assert not check(tmp_path)
    (tmp_path / "openapi.json").write_text("{}\n")
    (tmp_path / ENVELOPE_PATH).unlink()
    (tmp_path / "events" / "backup-archived.v1.schema.json").write_text("{}\n")

    assert main(["check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "changed: openapi.json" in err
    assert f"missing: {ENVELOPE_PATH}" in err
    assert "extra:   events/backup-archived.v1.schema.json" in err

    assert main(["write", "--dir", str(tmp_path)]) == 1  # rewrites, but keeps and reports the extra file
    assert check(tmp_path).extra == ["events/backup-archived.v1.schema.json"]
    assert main(["write", "--dir", str(tmp_path), "--prune"]) == 0
    assert main(["check", "--dir", str(tmp_path)]) == 0


# --- validity ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCHEMA_PATHS)
def test_schema_is_valid_json_schema_2020_12(path: str) -> None:
    schema = _load(path)
    assert schema["$schema"] == DIALECT
    assert schema["$id"] == ID_BASE + path
    assert schema["title"]
    Draft202012Validator.check_schema(schema)


def test_asyncapi_header_schemas_are_valid(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    for schema in asyncapi["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)  # AsyncAPI's Schema Object is a superset of draft-07
        Draft202012Validator.check_schema(schema)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _pointer(doc: Any, fragment: str) -> Any:
    for token in filter(None, fragment.split("/")):
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


@pytest.mark.parametrize("path", ["asyncapi.yaml", *SCHEMA_PATHS])
def test_every_ref_resolves_to_an_existing_file_and_pointer(path: str) -> None:
    doc = _load(path)
    refs = set(_refs(doc))
    assert refs or path.startswith("events/"), "expected $refs"
    for ref in sorted(refs):
        target, _, fragment = ref.partition("#")
        if target:
            file = (CONTRACTS / path).parent / target
            assert file.is_file(), f"{path}: $ref {ref} names a file that does not exist"
            relative = file.resolve().relative_to(CONTRACTS.resolve()).as_posix()
            target_doc = _load(relative)
        else:
            target_doc = doc
        try:
            _pointer(target_doc, fragment)
        except (KeyError, IndexError, ValueError):
            pytest.fail(f"{path}: $ref {ref} points nowhere")


def test_asyncapi_has_a_message_per_event_type_with_one_producer(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    for cls in EVENT_TYPES:
        assert producers(cls.event_type) and len(producers(cls.event_type)) == 1, cls.event_type
        data = messages[cls.event_type]["payload"]["allOf"][1]["properties"]["data"]
        assert data == {"$ref": f"./{event_path(cls)}"}
    events = asyncapi["channels"]["events"]
    assert set(events["messages"]) == {cls.event_type for cls in EVENT_TYPES}
    assert events["address"] == "lc2.backup.evt.{backupId}.{eventType}"
    assert {"backupId", "eventType"} <= set(events["parameters"])


# --- samples -----------------------------------------------------------------------------------------------


def test_every_event_type_has_a_sample() -> None:
    assert set(EVENT_SAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=_sample_id)
def test_event_sample_validates_against_its_schema(event: DomainEvent, schemas: Registry[Any]) -> None:
    data = event.model_dump(mode="json", by_alias=True)  # exactly what the event store writes
    assert errors(_load(event_path(type(event))), schemas, data) == []


@pytest.mark.parametrize("event", SAMPLES, ids=_sample_id)
def test_enveloped_sample_validates_against_its_asyncapi_message(
    event: DomainEvent, schemas: Registry[Any], asyncapi: dict[str, Any]
) -> None:
    envelope = Envelope(
        id=event_id(BACKUP_ID, event.dedupe_key()),
        type=event.event_type,
        schema_version=event.schema_version,
        backup_id=BACKUP_ID,
        occurred_at=datetime(2025, 1, 31, 2, 0, tzinfo=UTC),
        correlation_id="nightly-2025-01-31",
        causation_id=str(uuid.uuid4()),
        producer="contracts-test",
        trace=TraceContext(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        data=event.model_dump(mode="json", by_alias=True),
    )
    body = json.loads(encode_envelope(envelope))
    message = asyncapi["components"]["messages"][event.event_type]
    assert errors(message["payload"], schemas, body, base="asyncapi.yaml") == []
    assert errors(_load(ENVELOPE_PATH), schemas, body) == []
    other = "BackupSucceeded" if event.event_type != "BackupSucceeded" else "BackupFailed"
    assert errors(asyncapi["components"]["messages"][other]["payload"], schemas, body, base="asyncapi.yaml")
    assert registry().decode_payload(decode_envelope(encode_envelope(envelope))) == event


def _payload_id(value: object) -> str:
    return str(getattr(value, "event_type", ""))


@pytest.mark.parametrize(("cls", "data"), INVALID_PAYLOADS, ids=_payload_id)
def test_schema_refuses_what_the_model_refuses(
    cls: type[DomainEvent], data: dict[str, Any], schemas: Registry[Any]
) -> None:
    with pytest.raises(pydantic.ValidationError):
        cls.model_validate(data)
    assert errors(_load(event_path(cls)), schemas, data)


def _intake_accepts(command: dict[str, Any]) -> bool:
    return parse_intake(read_command(json.dumps(command).encode(), "msg-1")).spec is not None


@pytest.mark.parametrize("name", COMMANDS)
def test_command_sample_validates_and_is_accepted(name: str, schemas: Registry[Any]) -> None:
    command = COMMANDS[name]
    assert errors(_load(COMMAND_PATH), schemas, command) == []
    assert _intake_accepts(command)


@pytest.mark.parametrize("name", INVALID_COMMANDS)
def test_command_schema_refuses_what_intake_rejects(name: str, schemas: Registry[Any]) -> None:
    command = INVALID_COMMANDS[name]
    assert errors(_load(COMMAND_PATH), schemas, command)
    assert not _intake_accepts(command)


def _restorer_accepts(command: dict[str, Any]) -> bool:
    return read_restore_command(json.dumps(command).encode(), "msg-1").spec is not None


@pytest.mark.parametrize("name", RESTORE_COMMANDS)
def test_restore_command_sample_validates_and_is_accepted(name: str, schemas: Registry[Any]) -> None:
    command = RESTORE_COMMANDS[name]
    assert errors(_load(RESTORE_COMMAND_PATH), schemas, command) == []
    assert _restorer_accepts(command)


@pytest.mark.parametrize("name", INVALID_RESTORE_COMMANDS)
def test_restore_command_schema_refuses_what_the_restorer_rejects(name: str, schemas: Registry[Any]) -> None:
    command = INVALID_RESTORE_COMMANDS[name]
    assert errors(_load(RESTORE_COMMAND_PATH), schemas, command)
    assert not _restorer_accepts(command)


def test_asyncapi_routes_restore_commands_to_their_own_channel(asyncapi: dict[str, Any]) -> None:
    channel = asyncapi["channels"]["restoreCommands"]
    assert channel["address"] == "lc2.backup.cmd.restore"
    assert asyncapi["components"]["messages"]["RequestRestore"]["payload"] == {"$ref": f"./{RESTORE_COMMAND_PATH}"}
    receivers = [op for op in asyncapi["operations"].values() if op["channel"]["$ref"] == "#/channels/restoreCommands"]
    assert {op["tags"][0]["name"] for op in receivers if op["action"] == "receive"} == {"restorer"}


def test_spec_schema_lists_the_cross_field_rules() -> None:
    rules = _load(SPEC_PATH)["x-cross-field-rules"]
    assert rules and all(set(rule) == {"rule", "message"} for rule in rules)


@pytest.mark.skipif(not SAMPLE_MANIFEST.is_file(), reason="deploy/samples/backuprequest-local.yaml not written yet")
def test_sample_manifest_validates(schemas: Registry[Any]) -> None:
    manifests = [doc for doc in yaml.safe_load_all(SAMPLE_MANIFEST.read_text()) if doc]
    assert manifests
    for manifest in manifests:
        assert errors(_load(COMMAND_PATH), schemas, manifest) == []
        assert errors(_load(SPEC_PATH), schemas, manifest["spec"]) == []
        assert _intake_accepts(manifest)
