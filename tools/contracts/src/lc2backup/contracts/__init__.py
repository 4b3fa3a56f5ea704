"""The contracts generator: ``contracts/`` is rendered from the code, and ``check`` fails when the two drift.

Every file under ``contracts/`` is an :class:`Artifact` (a relative path and a function producing its text),
listed in :func:`artifacts.all_artifacts`. ``python -m lc2backup.contracts write`` renders them all;
``python -m lc2backup.contracts check`` exits 1 listing every file that differs, is missing or is extra.
"""

from lc2backup.contracts.artifacts import KEPT, Artifact, all_artifacts
from lc2backup.contracts.generating import Drift, check, write
from lc2backup.contracts.schemas import DIALECT, ID_BASE

__all__ = ["DIALECT", "ID_BASE", "KEPT", "Artifact", "Drift", "all_artifacts", "check", "write"]
