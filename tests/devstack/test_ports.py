"""Ports handed to servers never collide with the source ports the kernel gives outgoing connections.

The flaky ``bind: address already in use`` of a nats-server in ``pytest -m aws`` came from ``bind(0)``
ports: they are taken from the same ephemeral range as every client connection's source port.
"""

from __future__ import annotations

import socket

from lc2backup.devstack import free_port


def test_server_ports_and_client_source_ports_are_disjoint() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        clients = [socket.create_connection(listener.getsockname()) for _ in range(64)]
        try:
            source_ports = {client.getsockname()[1] for client in clients}
        finally:
            for client in clients:
                client.close()
    server_ports = {free_port() for _ in range(256)}
    assert min(source_ports) > max(server_ports), (sorted(source_ports)[:5], sorted(server_ports)[-5:])


def test_a_handed_out_port_can_be_bound() -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        pass


def test_a_port_is_handed_out_once_even_after_its_server_stopped() -> None:
    """A server stopped for an outage comes back on its old port: nobody else may be given it meanwhile."""
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        pass  # the server ran and stopped: the port is free on the machine again
    handed = [free_port() for _ in range(2000)]
    assert port not in handed and len(set(handed)) == len(handed)
