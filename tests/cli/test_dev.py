"""``lc2backup dev up --detach`` / ``status`` / ``down`` as real processes: what make up/status/down run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lc2backup.devstack import LocalStack
from tests.cli.helpers import SAMPLE, backup_id_in, lc2, lc2_process, processes_under

pytestmark = pytest.mark.e2e


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "lc2"
    yield directory
    for proc in processes_under(directory):  # only if the test failed half-way: never leave a stack behind
        proc.kill()
    LocalStack(directory).remove()


def _gone(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_up_detached_serves_the_sample_then_down_leaves_no_process(state_dir: Path) -> None:
    env = {"LC2_STATE_DIR": str(state_dir)}
    up = lc2_process("dev", "up", "--detach", env=env)
    assert up.returncode == 0, up.stdout + up.stderr + (state_dir / "dev.log").read_text()

    state = json.loads((state_dir / "stack.json").read_text())
    supervisor = psutil.Process(state["supervisor"]["pid"])
    tree = [supervisor, *supervisor.children(recursive=True)]
    assert len(tree) >= 9  # supervisor, 3 servers, 5 services (PostgreSQL adds its own workers)
    exported = (state_dir / "env").read_text()
    assert f"export LC2_API_URL={state['api']['url']}" in exported
    assert "export LC2_LOCAL__DATABASES=" in exported and "liferay-local" in exported

    status = lc2_process("dev", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert state["api"]["url"] in status.stdout and "(ready)" in status.stdout

    # a second `up` finds the running stack instead of starting another one
    again = lc2_process("dev", "up", "--detach", env=env)
    assert again.returncode == 0 and "already running" in again.stdout

    # the endpoints come from stack.json alone; the sample manifest backs up the seeded demo environment
    applied = lc2("apply", "-f", str(SAMPLE), env=env)
    assert applied.exit_code == 0, applied.output
    backup_id = backup_id_in(applied.stdout)
    watched = lc2("watch", backup_id, "--timeout", "120", env=env)
    assert watched.exit_code == 0, watched.output
    listed = lc2("list", env=env)
    assert backup_id in listed.stdout

    down = lc2_process("dev", "down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    assert all(_gone(proc) for proc in tree), [p for p in tree if not _gone(p)]
    assert processes_under(state_dir) == []
    assert not (state_dir / "stack.json").exists()

    after = lc2_process("dev", "status", env=env)
    assert after.returncode == 1 and "not running" in after.stdout
    assert lc2_process("dev", "down", env=env).returncode == 0  # idempotent
