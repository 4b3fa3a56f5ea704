"""``write`` and ``check``: render every artifact and compare it, byte for byte, with what is in ``contracts/``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.contracts.artifacts import KEPT, Artifact, all_artifacts


@dataclass(frozen=True)
class Drift:
    """Relative paths that differ from the code (changed), are not there (missing) or should not be (extra)."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.extra)

    def lines(self) -> list[str]:
        return (
            [f"changed: {p}" for p in self.changed]
            + [f"missing: {p}" for p in self.missing]
            + [f"extra:   {p}" for p in self.extra]
        )


def render(artifacts: Iterable[Artifact]) -> dict[str, str]:
    rendered: dict[str, str] = {}
    for artifact in artifacts:
        if artifact.path in rendered:
            raise ValueError(f"two artifacts write {artifact.path}")
        rendered[artifact.path] = artifact.render()
    return rendered


def _present(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def compare(root: Path, rendered: dict[str, str], kept: Sequence[str] = KEPT) -> Drift:
    present = _present(root)
    drift = Drift(extra=sorted(present - rendered.keys() - set(kept)))
    for path in sorted(rendered):
        if path not in present:
            drift.missing.append(path)
        elif _read(root / path) != rendered[path]:
            drift.changed.append(path)
    drift.missing.extend(sorted(set(kept) - present))
    return drift


def check(root: Path, artifacts: Iterable[Artifact] | None = None) -> Drift:
    return compare(root, render(all_artifacts() if artifacts is None else artifacts))


def write(root: Path, artifacts: Iterable[Artifact] | None = None, *, prune: bool = False) -> Drift:
    """Write what differs; delete extra files only with ``prune``. Returns what was out of date before."""
    rendered = render(all_artifacts() if artifacts is None else artifacts)
    drift = compare(root, rendered)
    for path in [*drift.changed, *drift.missing]:
        if path in rendered:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(rendered[path].encode("utf-8"))
    if prune:
        for path in drift.extra:
            (root / path).unlink()
    return drift
