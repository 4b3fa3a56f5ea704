"""What every benchmark gets: the shared stack, a scratch directory, the sizes, the peers and a logger."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.sizes import Sizes
from lc2backup.devstack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
AWSCLI_VENV = ROOT / ".tools" / "awscli"


@dataclass(frozen=True)
class Peers:
    """The peer tools of B4; None where not installed (``make bench`` installs both, the smoke run skips)."""

    aws: str | None
    rclone: str | None

    @classmethod
    def find(cls) -> Peers:
        aws = AWSCLI_VENV / "bin" / "aws"
        return cls(str(aws) if aws.exists() else None, shutil.which("rclone"))

    def missing(self) -> list[str]:
        return [name for name, path in (("aws", self.aws), ("rclone", self.rclone)) if path is None]

    def as_dict(self) -> dict[str, str | None]:
        return {"aws": self.aws, "rclone": self.rclone}


@dataclass
class Context:
    stack: LocalStack
    workdir: Path
    sizes: Sizes
    peers: Peers
    say: Callable[[str], None]

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
