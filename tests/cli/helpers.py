"""Running the ``lc2backup`` command in-process (typer's CliRunner) or as a real process, and manifests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil
import yaml
from typer.testing import CliRunner, Result

from lc2backup.cli.__main__ import app

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy/samples/backuprequest-local.yaml"
BACKUP_ID = re.compile(r"backup id\s+([0-9a-f-]{36})")
# every variable the CLI resolves endpoints from: a test decides explicitly what the command sees
ISOLATED = {"LC2_API_URL": None, "LC2_NATS__URL": None, "LC2_STATE_DIR": None, "COLUMNS": "200"}


def lc2(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """``lc2backup ARGS`` in this process, with the LC2_* endpoint variables cleared unless given."""
    return CliRunner().invoke(app, list(args), env={**ISOLATED, **(env or {})}, catch_exceptions=False)


def lc2_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 170
) -> subprocess.CompletedProcess[str]:
    """``lc2backup ARGS`` as its own process (what ``make`` runs), output captured."""
    clean = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    return subprocess.run(
        [sys.executable, "-m", "lc2backup.cli", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def backup_id_in(output: str) -> str:
    found = BACKUP_ID.search(output)
    assert found, f"no backup id in:\n{output}"
    return found.group(1)


def write_manifest(path: Path, spec: dict[str, Any], *, name: str, namespace: str = "lc2-test", **top: Any) -> Path:
    doc = {
        "apiVersion": "backup.liferay.cloud/v1alpha1",
        "kind": "BackupRequest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        **top,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def processes_under(directory: Path) -> list[psutil.Process]:
    """Live processes whose command line or open files point into ``directory`` (servers, services, logs)."""
    roots = {str(directory)}
    pg = directory / "postgres"
    if pg.is_symlink():
        roots.add(str(pg.resolve()))
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            mentioned = " ".join(proc.cmdline()) + " " + " ".join(f.path for f in proc.open_files())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(root in mentioned for root in roots):
            found.append(proc)
    return found


def eventually(check: Callable[[], T], timeout: float, interval: float = 0.2) -> T:
    """``check()``'s result once it stops raising AssertionError; after ``timeout``, its last assertion error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)
