"""A TCP proxy that can be dropped and brought back on the same port: an object store "unreachable for a while".

Killing the session's SeaweedFS would break every later test; a proxy in front of it, used only by the
services under test, makes the outage theirs alone. ``drop()`` closes the listener and resets every open
connection (new ones are refused, as with a store that is down); ``restore()`` listens again. Threads, not
asyncio: it must keep forwarding while the test's event loop is blocked (restarting a service).

``hold()`` keeps the connections open but forwards nothing until ``release()``: the process behind it waits
for an answer exactly at its next request, which lets a test order two processes' steps deterministically.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

from lc2backup.devstack import free_port


@dataclass
class TcpProxy:
    upstream_host: str
    upstream_port: int
    port: int = field(default_factory=free_port)
    _listener: socket.socket | None = None
    _connections: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _flowing: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._flowing.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-proxy", daemon=True).start()
        return self

    def restore(self) -> None:
        if self._listener is None:
            self.start()

    def drop(self) -> None:
        """Refuse new connections and reset the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not FIN
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    close = drop

    def hold(self) -> None:
        """Forward nothing more (what arrives waits in the proxy) until ``release()``; connections stay open."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # dropped
            try:
                server = socket.create_connection((self.upstream_host, self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._connections |= {client, server}
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):  # wakes the other direction's pump, which then closes its own source
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            src.close()
            with self._lock:
                self._connections -= {src, dst}
