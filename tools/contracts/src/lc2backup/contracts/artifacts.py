"""The list of everything under ``contracts/``: add a file there by adding an :class:`Artifact` here.

An artifact is a path relative to ``contracts/`` and a function that renders its whole text from the code.
Nothing under ``contracts/`` is edited by hand; files that must stay as they are (a retired schema version,
still readable in the event log) are listed in :data:`KEPT`, so ``check`` neither regenerates nor flags them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lc2backup.contracts import asyncapi, natsauth, openapi, schemas
from lc2backup.contracts.rendering import to_json, to_yaml
from lc2backup.crd_gateway import crd
from lc2backup.domain.events import EVENT_TYPES
from lc2backup.domain.wire import DomainEvent


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to contracts/, with '/' separators
    render: Callable[[], str]
    about: str


# Retired schema versions: when an event's schema_version is bumped, add its old file here (events stored with
# the old version stay in the stream and are upcast on read, so their contract stays published).
KEPT: tuple[str, ...] = ()


def _event(cls: type[DomainEvent]) -> Artifact:
    return Artifact(
        schemas.event_path(cls), lambda: to_json(schemas.event_schema(cls)), f"payload (`data`) of {cls.event_type}"
    )


def schema_artifacts() -> list[Artifact]:
    return [
        Artifact(schemas.ENVELOPE_PATH, lambda: to_json(schemas.envelope_schema()), "the envelope of every event"),
        Artifact(schemas.COMMAND_PATH, lambda: to_json(schemas.command_schema()), "the RequestBackup command"),
        Artifact(
            schemas.RESTORE_COMMAND_PATH,
            lambda: to_json(schemas.restore_command_schema()),
            "the RequestRestore command (its RestoreRequestSpec included)",
        ),
        Artifact(schemas.SPEC_PATH, lambda: to_json(schemas.spec_schema()), "the BackupRequest spec"),
        Artifact(
            schemas.METADATA_PATH,
            lambda: to_json(schemas.metadata_schema()),
            "metadata.json, written last beside a backup's artefacts: what a restorer reads first",
        ),
        *(_event(cls) for cls in EVENT_TYPES),
    ]


def crd_artifacts() -> list[Artifact]:
    """contracts/crds/: Kubernetes CustomResourceDefinitions, rendered by the service that serves them."""
    return [
        Artifact(
            resource.contract_path.removeprefix("contracts/"),
            resource.yaml,
            f"the {resource.name} CustomResourceDefinition (from {resource.spec_model.__name__})",
        )
        for resource in crd.RESOURCES
    ]


def api_artifacts() -> list[Artifact]:
    return [
        Artifact(
            "asyncapi.yaml",
            lambda: to_yaml(asyncapi.asyncapi_document(), first=asyncapi.TOP_LEVEL),
            "AsyncAPI 3.0 document: NATS subjects, messages, headers, who sends and receives what",
        ),
        Artifact("openapi.json", lambda: to_json(openapi.openapi_document()), "OpenAPI document of the projection API"),
        Artifact(
            natsauth.CONTRACT_PATH,
            natsauth.authorization_conf,
            "NATS users (one per service, admin, requester) and their least-privilege publish/subscribe grants",
        ),
    ]


def _readme(listed: list[Artifact]) -> str:
    rows = "\n".join(f"| `{a.path}` | {a.about} |" for a in sorted(listed, key=lambda a: a.path))
    kept = "".join(f"| `{path}` | retired schema version, kept as published |\n" for path in KEPT)
    return (
        "# contracts\n\n"
        "Generated from the code: do not edit. Regenerate with `python -m lc2backup.contracts write`;\n"
        "`python -m lc2backup.contracts check` (and `tests/contracts`) fail when code and contracts drift.\n\n"
        "| file | what |\n|---|---|\n" + rows + "\n" + kept
    )


def all_artifacts() -> list[Artifact]:
    listed = [*schema_artifacts(), *crd_artifacts(), *api_artifacts()]
    readme = Artifact("README.md", lambda: _readme(listed), "this index")
    return [*listed, readme]
