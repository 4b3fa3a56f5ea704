"""The BackupRequest spec's rules, stated again from the documentation, as the fuzzers' oracle.

Written from the CRD's field table (docs/kubernetes.md), the README's example and the messages of
``lc2backup.domain.spec``; it imports nothing of lc2backup, so a rule the system gets wrong disagrees with
this file instead of agreeing with itself. ``problems(spec)`` names the field of every rule a spec breaks:
an empty set means the spec must be accepted. Rules on single fields come first; the two rules that span
fields (local means a dump; a destination may not overlap its source; Azure, and only Azure, names its storage
account) are judged only on a spec whose fields
are each valid, as they compare values that must first be read.
"""

from __future__ import annotations

import json
from typing import Any

PROVIDERS = ("aws", "gcp", "azure", "local")
DATABASE_TYPES = ("snapshot", "dump")
MAX_TAGS = 32
MAX_TAG_VALUE = 256
MAX_IGNORED_DATABASES = 64
MAX_PREFIX = 512
RETENTION = (1, 3650)

# Characters each kind of name may hold, spelled out rather than copied from the model's patterns.
_LOWER_ALNUM = set("abcdefghijklmnopqrstuvwxyz0123456789")
_LETTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _LOWER_ALNUM | _LETTERS
_PREFIX_CHARS = _ALNUM | set("._+=@,~()!-")
_INSTANCE_CHARS = _ALNUM | set("._:/-")
_DATABASE_CHARS = _ALNUM | set("_$-")
_TAG_KEY_CHARS = _ALNUM | set("._/-")

_TOP = {"projectId", "environment", "provider", "database", "documentLibrary", "retentionDays", "tags"}
_DATABASE = {"type", "instanceId", "databaseName", "databasesToIgnore"}
_DOCUMENT_LIBRARY = {
    "sourceBucket",
    "sourcePrefix",
    "destinationBucket",
    "destinationPrefix",
    "excludeGeneratedFiles",
    "storageAccount",
}


def is_dns_label(value: Any) -> bool:
    """1-63 of a-z 0-9 '-', starting and ending with a letter or digit."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 63
        and set(value) <= _LOWER_ALNUM | {"-"}
        and value[0] != "-"
        and value[-1] != "-"
    )


def is_bucket(value: Any) -> bool:
    """3-63 characters; dot-separated labels of a-z 0-9 '-', each starting and ending with a letter or digit."""
    if not isinstance(value, str) or not 3 <= len(value) <= 63:
        return False
    return all(
        label and set(label) <= _LOWER_ALNUM | {"-"} and label[0] != "-" and label[-1] != "-"
        for label in value.split(".")
    )


def is_prefix(value: Any) -> bool:
    """Relative (no leading '/'), no '//', at most 512 characters, letters, digits and . _ - + = @ , ~ ( ) !;
    a segment is never only dots (so never '.' nor '..'). A trailing '/' is optional."""
    if not isinstance(value, str) or len(value) > MAX_PREFIX:
        return False
    if value == "":
        return True
    segments = value.removesuffix("/").split("/")
    return all(seg and set(seg) <= _PREFIX_CHARS and set(seg) != {"."} for seg in segments)


def is_instance_id(value: Any) -> bool:
    """1-255 of letters, digits and . _ : / -, starting with a letter or digit, or with '/' and then one (an Azure
    resource id)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or not set(value) <= _INSTANCE_CHARS:
        return False
    first = value[1:2] if value.startswith("/") else value[0]
    return first != "" and first in _ALNUM


def is_storage_account(value: Any) -> bool:
    """Azure's storage account names: 3-24 lowercase letters and digits."""
    return isinstance(value, str) and 3 <= len(value) <= 24 and set(value) <= _LOWER_ALNUM


def is_database_name(value: Any) -> bool:
    """1-63: a letter or '_', then letters, digits, '_', '$' or '-'."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 63
        and set(value) <= _DATABASE_CHARS
        and (value[0] == "_" or value[0] in _LETTERS)
    )


def is_tag_key(value: Any) -> bool:
    """1-63 of letters, digits and . _ / -, starting and ending with a letter or digit."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 63
        and set(value) <= _TAG_KEY_CHARS
        and value[0] in _ALNUM
        and value[-1] in _ALNUM
    )


def is_integer(value: Any) -> bool:
    """A JSON integer: a number with no fractional part (JSON Schema counts 30.0 as one); never a boolean."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _object(spec: dict[str, Any], path: str, value: Any, known: set[str], found: set[str]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        found.add(path)
        return None
    found.update(f"{path}.{key}" for key in value if key not in known)  # unknown fields are refused
    return value


def _required(node: dict[str, Any], path: str, name: str, valid: Any, found: set[str]) -> None:
    if name not in node or not valid(node[name]):
        found.add(f"{path}.{name}")


def _optional(node: dict[str, Any], path: str, name: str, valid: Any, found: set[str]) -> None:
    if name in node and not valid(node[name]):
        found.add(f"{path}.{name}")


def _dir(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def problems(spec: Any) -> set[str]:
    """The field of every rule ``spec`` breaks (``spec.database.instanceId``); empty: the spec is valid."""
    found: set[str] = set()
    top = _object(spec, "spec", spec, _TOP, found)
    if top is None:
        return found
    _required(top, "spec", "projectId", is_dns_label, found)
    _required(top, "spec", "environment", is_dns_label, found)
    _required(top, "spec", "provider", lambda v: isinstance(v, str) and v in PROVIDERS, found)
    _optional(top, "spec", "retentionDays", lambda v: is_integer(v) and RETENTION[0] <= v <= RETENTION[1], found)

    if "tags" in top:
        tags = top["tags"]
        if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
            found.add("spec.tags")
        if isinstance(tags, dict):
            for key, value in tags.items():
                if not is_tag_key(key) or not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
                    found.add(f"spec.tags.{key}")

    database = _object(top, "spec.database", top.get("database"), _DATABASE, found) if "database" in top else None
    if "database" not in top:
        found.add("spec.database")
    if database is not None:
        _required(database, "spec.database", "type", lambda v: isinstance(v, str) and v in DATABASE_TYPES, found)
        _required(database, "spec.database", "instanceId", is_instance_id, found)
        _optional(database, "spec.database", "databaseName", lambda v: v is None or is_database_name(v), found)
        _optional(
            database,
            "spec.database",
            "databasesToIgnore",
            lambda v: isinstance(v, list) and len(v) <= MAX_IGNORED_DATABASES and all(map(is_database_name, v)),
            found,
        )

    dl_path = "spec.documentLibrary"
    library = (
        _object(top, dl_path, top.get("documentLibrary"), _DOCUMENT_LIBRARY, found)
        if "documentLibrary" in top
        else None
    )
    if "documentLibrary" not in top:
        found.add(dl_path)
    if library is not None:
        _required(library, dl_path, "sourceBucket", is_bucket, found)
        _required(library, dl_path, "destinationBucket", is_bucket, found)
        _optional(library, dl_path, "sourcePrefix", is_prefix, found)
        _optional(library, dl_path, "destinationPrefix", is_prefix, found)
        _optional(library, dl_path, "excludeGeneratedFiles", lambda v: isinstance(v, bool), found)
        _optional(library, dl_path, "storageAccount", lambda v: v is None or is_storage_account(v), found)

    if found:
        return found
    assert database is not None and library is not None
    return _cross_field(top, database, library)


def _cross_field(top: dict[str, Any], database: dict[str, Any], library: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    if top["provider"] == "local" and database["type"] != "dump":
        found.add("spec.database.type")  # the local provider has no managed snapshot
    src, dst = _dir(library.get("sourcePrefix", "")), _dir(library.get("destinationPrefix", ""))
    if library["sourceBucket"] == library["destinationBucket"] and (dst.startswith(src) or src.startswith(dst)):
        found.add("spec.documentLibrary.destinationPrefix")  # the backup would copy into (or out of) itself
    if (top["provider"] == "azure") != (library.get("storageAccount") is not None):
        found.add("spec.documentLibrary.storageAccount")  # Azure containers live in a named account; only there
    return found


def explains(reported: set[str], expected: set[str]) -> bool:
    """Every expected field is reported, and every reported field lies at or under an expected one."""

    def under(field: str, parent: str) -> bool:
        return field == parent or field.startswith((parent + ".", parent + "["))

    return all(any(under(r, e) for r in reported) for e in expected) and all(
        any(under(r, e) for e in expected) for r in reported
    )


def is_json_object_command(raw: bytes) -> bool:
    """Whether the bytes are a UTF-8 JSON object that can be read: anything else cannot be a command at all
    (nesting deeper than a JSON reader's recursion limit cannot be read)."""
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


__all__ = ["explains", "is_json_object_command", "problems"]
