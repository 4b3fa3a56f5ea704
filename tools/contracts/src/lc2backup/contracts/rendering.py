"""Deterministic text: the same code always renders the same bytes, so ``check`` can compare files as strings.

JSON is dumped with sorted keys; YAML with sorted keys below a fixed top-level order, no anchors/aliases
(PyYAML would emit them for any object used twice) and multi-line strings as literal blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml


def to_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(item) for item in value]
    return value


def to_yaml(doc: dict[str, Any], first: Sequence[str] = ()) -> str:
    """Keys sorted at every level, except that the top-level keys in ``first`` come first, in that order."""
    body = _sorted(doc)
    ordered = {key: body[key] for key in first if key in body} | body
    return yaml.dump(ordered, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
