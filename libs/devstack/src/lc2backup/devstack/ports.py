"""Free loopback ports, so every server of the stack can run beside any other copy of it.

A port is chosen *below* the kernel's ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``), never
from it: the kernel gives ephemeral ports to every outgoing connection (each client of NATS, PostgreSQL or
S3), so a port taken from that range (``bind(0)``) can become some connection's source port between the
moment it is chosen and the moment the server binds it — seen as ``bind: address already in use`` when a
nats-server started, or restarted on its old port after an outage. Below the range only explicit binds
compete, and each candidate is checked free before it is handed out.

A port is handed out once per process: a server stopped for an outage restarts on its old port, and while it
is down (or before a new server has bound its port) the port looks free to anyone else who asks. Processes that
run side by side (pytest-xdist's workers) each take their own slice of the range, so one never hands out a port
another's server is down on: the slice is the worker's (``PYTEST_XDIST_WORKER``, ``gw<n>`` of
``PYTEST_XDIST_WORKER_COUNT``).
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
_LOWEST = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _slice(low: int, high: int) -> tuple[int, int]:
    """This process's part of [low, high]: all of it, or a pytest-xdist worker's own share."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1):
        return low, high
    size = (high - low + 1) // int(count)
    start = low + int(worker[2:]) % int(count) * size
    return start, start + size - 1


def free_port() -> int:
    """A port free on 127.0.0.1 at the time of the call, below the kernel's ephemeral range."""
    high = _ephemeral_start() - 1
    if high <= _LOWEST:
        raise RuntimeError(f"the ephemeral port range starts at {high + 1}: no room below it for servers")
    low, high = _slice(_LOWEST, high)
    for _ in range(1000):
        port = random.randint(low, high)
        if port not in _handed_out and _is_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port found on {LOOPBACK} between {low} and {high}")
