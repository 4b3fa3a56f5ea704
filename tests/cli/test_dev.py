"""``lc2backup dev up --detach`` / ``status`` / ``down`` as real processes: what make up/status/down run."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from lc2backup.devstack import LocalStack
from lc2backup.devstack.probes import http_status
from tests.cli.helpers import SAMPLE, backup_id_in, eventually, lc2, lc2_process, processes_under

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


def _service(state_dir: Path, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((state_dir / "stack.json").read_text())["services"][name]
    return doc


def test_a_service_killed_five_times_comes_back_each_time_and_status_shows_it_down(state_dir: Path) -> None:
    """More crashes than the old supervisor's three restarts: each is restarted after a growing delay, and
    while it waits `dev status` shows the service down with how it exited and when it comes back."""
    # the restart delays start at 0.5 s here (1 s by default): 0.5, 1, 2, 4 and 8 s
    env = {"LC2_STATE_DIR": str(state_dir), "COLUMNS": "250", "LC2_DEV_RESTART_DELAY_SECONDS": "0.5"}
    up = lc2_process("dev", "up", "--detach", env=env)
    assert up.returncode == 0, up.stdout + up.stderr + (state_dir / "dev.log").read_text()
    killed: list[int] = []
    kills = 5
    for n in range(1, kills + 1):

        def restarted(n: int = n) -> int:
            svc = _service(state_dir, "metadata")
            assert svc["state"] == "running" and svc["restarts"] == n - 1, svc
            assert svc["pid"] not in killed and psutil.pid_exists(svc["pid"]), svc
            return int(svc["pid"])

        # backoff 0.5, 1, 2, 4 s before the restarts 1-4, plus start-up: well inside 60 s each
        pid = eventually(restarted, timeout=60)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def shown_down() -> str:
        status = lc2_process("dev", "status", env=env)
        assert status.returncode == 0, status.stderr
        row = next(line for line in status.stdout.splitlines() if line.startswith("metadata "))
        assert f"{killed[-1]}" in row and "down (killed by SIGKILL at" in row and "restarting at" in row, row
        assert "down: metadata" in status.stdout, status.stdout
        return row

    row = eventually(shown_down, timeout=10)  # the fifth restart waits 8 s: the supervisor records it down
    print(f"status while down: {row}")
    record = _service(state_dir, "metadata")
    assert record["restarts"] == kills - 1 and record["lastExit"] == "killed by SIGKILL"

    def back() -> str:
        svc = _service(state_dir, "metadata")
        assert svc["state"] == "running" and svc["restarts"] == kills and svc["pid"] not in killed, svc
        assert http_status(f"{svc['url']}/readyz", timeout=2) == 200
        status = lc2_process("dev", "status", env=env)
        row = next(line for line in status.stdout.splitlines() if line.startswith("metadata "))
        assert "running (last killed by SIGKILL" in row and f" {kills} " in row, row
        assert "down:" not in status.stdout, status.stdout
        return row

    row = eventually(back, timeout=60)
    print(f"status after {kills} kills: {row}")
    others = json.loads((state_dir / "stack.json").read_text())["services"]
    assert {name: svc["restarts"] for name, svc in others.items() if name != "metadata"} == dict.fromkeys(
        ("crd-gateway", "db-export", "doclib-transfer", "archiver", "restorer"), 0
    )
    down = lc2_process("dev", "down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
