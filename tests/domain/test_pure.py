"""The domain is a pure core: importing it loads no messaging or tracing library, nor any of our I/O code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("nats", "opentelemetry", "lc2backup.eventing", "lc2backup.runtime", "lc2backup.providers")

PROGRAM = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by(module: str) -> set[str]:
    """Every module a fresh interpreter has loaded after importing ``module`` (and nothing else)."""
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, module], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout))


def _offending(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


@pytest.mark.parametrize("module", ["lc2backup.domain", "lc2backup.domain.wire", "lc2backup.domain.state"])
def test_importing_the_domain_loads_no_io_library(module: str) -> None:
    loaded = _loaded_by(module)
    assert module in loaded
    assert _offending(loaded) == [], f"importing {module} loads I/O code"


def test_the_check_sees_an_io_import() -> None:
    """Positive control: the same check flags the eventing library, which does load nats and opentelemetry."""
    offending = _offending(_loaded_by("lc2backup.eventing"))
    assert "nats" in offending and "opentelemetry" in offending
