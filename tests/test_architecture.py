"""The architecture is enforced, and each lib's public surface is what its ``__all__`` says."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
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


SERVICES = [
    "lc2backup-crd-gateway",
    "lc2backup-db-export",
    "lc2backup-doclib-transfer",
    "lc2backup-metadata",
    "lc2backup-archiver",
    "lc2backup-restorer",
]
TEST_ONLY = {"lc2backup-testing", "lc2backup-devstack", "kmock", "cel-python", "jsonpatch", "moto", "pytest"}


def _closure(roots: list[str]) -> set[str]:
    """Every package ``roots`` install, from uv.lock (what the image's ``uv sync --package ...`` installs)."""
    lock = tomllib.loads((Path(__file__).parents[1] / "uv.lock").read_text())
    requires = {p["name"]: [d["name"] for d in p.get("dependencies", [])] for p in lock["package"]}
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(requires.get(name, []))
    return seen


def test_the_image_installs_no_test_only_code() -> None:
    """The Dockerfile installs the six services; the emulator and the instant provider are not among them."""
    root = Path(__file__).parents[1]
    assert set(re.findall(r"--package (\S+)", (root / "Dockerfile").read_text())) == set(SERVICES)
    shipped = _closure(SERVICES)
    assert not shipped & TEST_ONLY
    assert {"lc2backup-testing", "kmock", "cel-python", "jsonpatch"} <= _closure(["lc2backup-testing"])  # control
    members = {
        tomllib.loads(pyproject.read_text())["project"]["name"]: pyproject.parent
        for pyproject in [*root.glob("libs/*/pyproject.toml"), *root.glob("services/*/pyproject.toml")]
    }
    shipped_modules = {p.name for name in shipped & set(members) for p in (members[name] / "src").rglob("*.py")}
    assert not shipped_modules & {"instant.py", "kubeapi.py", "kubestore.py", "kubeschema.py"}
    assert "instant.py" in {p.name for p in (members["lc2backup-testing"] / "src").rglob("*.py")}  # control


def test_local_modes_other_than_real_come_from_installed_plugins() -> None:
    from lc2backup.providers import ProviderNotConfigured
    from lc2backup.providers.plugins import database_provider, transfer_provider

    assert type(database_provider("instant")).__module__ == "lc2backup.testing.instant"
    assert type(transfer_provider("instant")).__module__ == "lc2backup.testing.instant"
    with pytest.raises(ProviderNotConfigured, match="LC2_LOCAL__MODE=nope: no installed package provides it"):
        database_provider("nope")


def test_event_types_are_named_by_their_classes() -> None:
    """Routing uses ``SomeEvent.event_type``: a type name spelled as a string literal in code is a second
    declaration that can drift (the event class's own ``event_type`` is the only one)."""
    from lc2backup.domain.events import EVENT_TYPES

    names = "|".join(cls.event_type for cls in EVENT_TYPES)
    literal = re.compile(rf"""(["'])({names})\1""")
    declaration = re.compile(r"event_type: ClassVar\[str\] = ")
    root = Path(__file__).parents[1]
    found = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for top in ("libs", "services", "tools")
        for path in sorted((root / top).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line) and not declaration.search(line)
    ]
    assert found == []
    assert literal.search('if kind == "BackupAdmitted":')  # control: the check sees a literal


def test_each_consumer_filter_is_declared_for_a_consumer_of_that_service() -> None:
    from lc2backup.crd_gateway.admission import ENTERS, LEAVES
    from lc2backup.eventing.permissions import SERVICES

    for service, access in SERVICES.items():
        assert set(access.receives) <= {durable for _, durable in access.consumers}, service
    assert set(SERVICES["crd-gateway"].received_types("crd-gateway-admission")) == {*ENTERS, *LEAVES}
