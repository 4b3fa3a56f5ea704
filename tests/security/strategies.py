"""Hypothesis strategies for BackupRequest specs: valid ones, and ones a few edits away from valid.

The values are drawn near the rules' edges (lengths around each bound, the characters one rule allows and
the next refuses, snake_case spellings of the camelCase fields) so that about half of the specs are valid.
Nothing here decides validity: ``tests/security/rules.py`` does, and the system must agree with it.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Characters that one field or another allows, and a few that none does.
EDGE_CHARS = "az09AZ-._/:$+=@,~()! \x00\nü*\\%"


def edgy_text(alphabet: str = EDGE_CHARS, *, max_size: int = 12) -> st.SearchStrategy[str]:
    """Short text over an alphabet that mixes allowed and refused characters, or text around a length bound."""
    short = st.text(st.sampled_from(alphabet), max_size=max_size)
    around_bounds = st.builds(
        lambda ch, n: ch * n, st.sampled_from("a0-.A_/"), st.sampled_from([2, 3, 62, 63, 64, 65, 255, 256, 512, 513])
    )
    return short | around_bounds


def _label() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


def _prefix() -> st.SearchStrategy[str]:
    segment = st.from_regex(r"\.{0,2}[A-Za-z0-9_+=@,~()!-][A-Za-z0-9._+=@,~()!-]{0,8}", fullmatch=True)
    return st.builds(
        lambda parts, slash: "/".join(parts) + ("/" if parts and slash else ""),
        st.lists(segment, max_size=3),
        st.booleans(),
    )


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    provider = draw(st.sampled_from(["local", "aws", "gcp", "azure"]))
    source = draw(st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True))
    spec: dict[str, Any] = {
        "projectId": draw(_label()),
        "environment": draw(_label()),
        "provider": provider,
        "database": {
            "type": "dump" if provider == "local" else draw(st.sampled_from(["snapshot", "dump"])),
            "instanceId": draw(st.from_regex(r"/?[A-Za-z0-9][A-Za-z0-9._:/-]{0,30}", fullmatch=True)),
        },
        "documentLibrary": {
            "sourceBucket": source,
            "sourcePrefix": draw(_prefix()),
            "destinationBucket": source + "-backups",
            "destinationPrefix": draw(_prefix()),
        },
    }
    if provider == "azure":
        spec["documentLibrary"]["storageAccount"] = draw(st.from_regex(r"[a-z0-9]{3,24}", fullmatch=True))
    if draw(st.booleans()):
        spec["database"]["databaseName"] = draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_$-]{0,20}", fullmatch=True))
    if draw(st.booleans()):
        spec["retentionDays"] = draw(st.integers(1, 3650))
    if draw(st.booleans()):
        keys = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,10}[A-Za-z0-9])?", fullmatch=True)
        spec["tags"] = draw(st.dictionaries(keys, st.text(max_size=40), max_size=3))  # any text, NUL included
    return spec


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
HOSTILE_TEXT = st.sampled_from(
    ["", "../..", "/etc/passwd", "a\x00b", "' OR 1=1 --", "A" * 300, "ü" * 70, "${jndi:ldap://x}", "\n", "*", ">"]
)
NUMBERS = st.sampled_from([0, 1, 30.0, 30.5, 3650, 3651, -1, True, "30", 1e20])
# Each path, with values drawn near its own rule; the snake_case spellings must be unknown fields.
PATHS: dict[str, st.SearchStrategy[Any]] = {
    "projectId": edgy_text("az09-A_."),
    "environment": edgy_text("az09-A_."),
    "provider": st.sampled_from(["aws", "gcp", "azure", "local", "AWS", "", "ibm"]),
    "retentionDays": NUMBERS,
    "tags": st.dictionaries(edgy_text("aZ09._/-:", max_size=6), edgy_text() | JSON, max_size=3),
    "database": JSON,
    "database.type": st.sampled_from(["snapshot", "dump", "Dump", "", None]),
    "database.instanceId": edgy_text("aZ09._:/- "),
    "database.databaseName": st.none() | edgy_text("aZ09_$-. "),
    "database.databasesToIgnore": st.lists(edgy_text("aZ09_$-. "), max_size=3) | JSON,
    "documentLibrary": JSON,
    "documentLibrary.sourceBucket": edgy_text("az09-.A_"),
    "documentLibrary.sourcePrefix": edgy_text("aZ09._-/!~ \x00"),
    "documentLibrary.destinationBucket": edgy_text("az09-.A_"),
    "documentLibrary.destinationPrefix": edgy_text("aZ09._-/!~ \x00"),
    "documentLibrary.excludeGeneratedFiles": st.sampled_from([True, False, 0, 1, "true", None]),
    "documentLibrary.storageAccount": st.none() | edgy_text("az09A-"),
    "unknownField": JSON,
    "database.unknownField": JSON,
    "project_id": _label(),
    "database.instance_id": st.just("db-1"),
    "documentLibrary.source_prefix": st.just("store/"),
    "retention_days": st.just(30),
}


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one to three fields replaced, removed or added; the source may become the destination."""
    spec: dict[str, Any] = json.loads(json.dumps(draw(valid_specs())))
    if draw(st.integers(0, 5)) == 0:  # the same bucket: valid only when the prefixes do not overlap
        spec["documentLibrary"]["destinationBucket"] = spec["documentLibrary"]["sourceBucket"]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(sorted(PATHS)))
        *parents, leaf = path.split(".")
        node = spec
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if draw(st.integers(0, 4)) == 0:
            node.pop(leaf, None)
        else:
            node[leaf] = draw(PATHS[path] | HOSTILE_TEXT)
    return spec


SPECS = st.one_of(valid_specs().map(lambda s: ("valid", s)), mutated_specs().map(lambda s: ("mutated", s)))
