"""``ledger serve --processes N`` gives each API process a listening socket of its own on
the one port (ADR 181): the kernel spreads new connections over the sockets, where one
shared accept queue let the first child to wake take most of a burst."""

from __future__ import annotations

import contextlib
import socket

import pytest

from adapters.cli.serve_processes import listening_sockets

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")


def accepted(sock: socket.socket) -> int:
    """How many connections wait on ``sock`` (accepted and closed here)."""
    sock.setblocking(False)
    count = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            conn, _ = sock.accept()
            conn.close()
            count += 1
    return count


def test_each_process_has_its_socket_on_one_port_and_connections_spread() -> None:
    sockets = listening_sockets("127.0.0.1", 0, 2)
    try:
        assert len({s.fileno() for s in sockets}) == 2
        port = sockets[0].getsockname()[1]
        assert port != 0
        assert {s.getsockname()[1] for s in sockets} == {port}
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in sockets)
        assert all(s.get_inheritable() for s in sockets)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        counts = [accepted(s) for s in sockets]
        for client in clients:
            client.close()
        assert sum(counts) == 200
        assert min(counts) >= 60, counts  # a hash of each connection: about half each
    finally:
        for sock in sockets:
            sock.close()


def test_a_taken_port_fails_the_start_and_leaves_no_socket_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            listening_sockets("127.0.0.1", taken.getsockname()[1], 2)
