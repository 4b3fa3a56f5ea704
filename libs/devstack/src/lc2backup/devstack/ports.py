"""Free loopback ports, so every server of the stack can run beside any other copy of it."""

from __future__ import annotations

import random
import socket

LOOPBACK = "127.0.0.1"


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (free at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_with_grpc_twin(offset: int = 10000, low: int = 20000, high: int = 45000) -> int:
    """A port P such that P and P + offset are both free.

    SeaweedFS binds its gRPC listener at the HTTP port + 10000 and offers no flag to move it,
    so both must be free, and P must stay below 65535 - offset.
    """
    for _ in range(500):
        port = random.randint(low, high)
        if _is_free(port) and _is_free(port + offset):
            return port
    raise RuntimeError("no free port pair found on 127.0.0.1")
