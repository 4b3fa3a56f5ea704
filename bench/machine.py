"""The machine a run measured on, and waiting for it to be quiet (others share it) before each benchmark."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from lc2backup.devstack.nats import nats_server_binary
from lc2backup.devstack.postgres import pg_bindir
from lc2backup.devstack.seaweed import weed_binary


def load_1min() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_for_quiet(threshold: float, patience: float, say: Callable[[str], None], poll: float = 15.0) -> float:
    """Wait until the 1-minute load average is below ``threshold`` (at most ``patience`` seconds).

    Returns the load measured at the end; the caller records it either way (a run that never got quiet says so).
    """
    deadline = time.monotonic() + patience
    load = load_1min()
    announced = False
    while load >= threshold and time.monotonic() < deadline:
        if not announced:
            say(f"  waiting for load < {threshold} (now {load:.2f}, patience {patience:.0f}s)")
            announced = True
        time.sleep(poll)
        load = load_1min()
    if load >= threshold:
        say(f"  load still {load:.2f} after {patience:.0f}s: measuring anyway")
    return load


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if text else "unavailable"


def _peer_version(path: str | None) -> str:
    return _version([path, "--version"]) if path else "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(peers: dict[str, str | None]) -> dict[str, object]:
    """CPU, memory, disk, OS and the versions of every server and peer the figures depend on."""
    root = Path(__file__).resolve().parent.parent
    disk = psutil.disk_usage(str(root))
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "disk_free_gib": round(disk.free / 2**30, 1),
        "kernel": platform.release(),
        "os": _version(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": sys.version.split()[0],
        "versions": {
            "nats-server": _version([nats_server_binary(), "--version"]),
            "seaweedfs": _version([weed_binary(), "version"]),
            "postgresql": _version([str(pg_bindir() / "postgres"), "--version"]),
            "pg_dump": _version([str(pg_bindir() / "pg_dump"), "--version"]),
            "aws-cli": _peer_version(peers.get("aws")),
            "rclone": _peer_version(peers.get("rclone")),
        },
    }
