"""The crash-point facility itself: inert by default, kills at the N-th hit, once, and honours its marker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

PROGRAM = """
import os
from lc2backup.runtime import arm_from_env, crash_point
arm_from_env(os.environ)
for i in range(5):
    crash_point("probe")
    print(i, flush=True)
"""


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LC2_CRASH")}
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def test_without_the_variables_nothing_happens() -> None:
    done = _run({})
    assert done.returncode == 0 and done.stdout.split() == ["0", "1", "2", "3", "4"]


def test_an_armed_point_kills_at_its_nth_hit_once_and_its_marker_disarms_it(tmp_path: Path) -> None:
    env = {"LC2_CRASH_AT": "probe@3,other", "LC2_CRASH_MARKERS": str(tmp_path)}
    first = _run(env)
    assert first.returncode == -signal.SIGKILL and first.stdout.split() == ["0", "1"]
    assert (tmp_path / "probe").exists() and not (tmp_path / "other").exists()
    again = _run(env)  # the restarted process runs through the point
    assert again.returncode == 0 and again.stdout.split() == ["0", "1", "2", "3", "4"]


def test_arming_needs_a_marker_directory() -> None:
    done = _run({"LC2_CRASH_AT": "probe"})
    assert done.returncode != 0 and "LC2_CRASH_MARKERS" in done.stderr
