"""Every ``metadata.json`` a test reads is checked against the published contract, not against our model.

The judge is ``jsonschema`` on ``contracts/metadata.v1.schema.json`` (the file restorers are pointed to), with
formats checked (``date-time``): a key written but not in the contract, a missing key or a wrong type fails the
test that read the document, whichever suite it is in.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = Path(__file__).resolve().parents[1] / "contracts" / "metadata.v1.schema.json"


@cache
def metadata_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def metadata_problems(document: Any) -> list[str]:
    """Every way ``document`` breaks the contract, as ``<path>: <message>``; empty when it conforms."""
    errors = [leaf for error in metadata_validator().iter_errors(document) for leaf in _leaves(error)]
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """A wrong nullable value fails ``anyOf [X, null]``: report why it is not an X, not that it is not null."""
    if not error.context:
        return [error]
    inner = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
    return [leaf for e in inner for leaf in _leaves(e)] or [error]


def read_metadata_json(body: bytes) -> dict[str, Any]:
    """The document in ``body``, after checking it against the contract (the assertion lists every problem)."""
    document = json.loads(body)
    problems = metadata_problems(document)
    assert not problems, f"metadata.json breaks {SCHEMA.name}:\n" + "\n".join(problems)
    assert isinstance(document, dict)
    return document
