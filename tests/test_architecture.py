"""The architecture is enforced, and each lib's public surface is what its ``__all__`` says."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LIBS = [
    "lc2backup.eventing",
    "lc2backup.domain",
    "lc2backup.runtime",
    "lc2backup.providers",
    "lc2backup.devstack",
    "lc2backup.testing",
]


def test_import_contracts_hold() -> None:
    """Services independent of each other, libs never import services, domain code does no I/O."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports is not None
    done = subprocess.run([lint_imports], capture_output=True, text=True, cwd=Path(__file__).parents[1], check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize("name", LIBS)
def test_public_surface_is_declared(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {n for n in vars(module) if not n.startswith("_") and not isinstance(getattr(module, n), type(sys))}
    public -= {"annotations"}
    assert exported == public, f"{name}: undeclared {sorted(public - exported)}, missing {sorted(exported - public)}"
