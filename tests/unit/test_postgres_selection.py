"""How tests.support.pg chooses a PostgreSQL server, without starting one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support import pg


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


def test_database_url_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example:5433/ledger?sslmode=disable")
    server = pg.start_postgres()
    assert type(server) is pg.PostgresServer
    assert server.url == "postgresql://u:p@db.example:5433/ledger?sslmode=disable"
    assert server.supports_restart is False
    with pytest.raises(pg.RestartUnsupported):
        server.restart()


def test_database_url_must_be_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://localhost/ledger")
    with pytest.raises(pg.PostgresUnavailable, match="DATABASE_URL"):
        pg.start_postgres()


@pytest.mark.usefixtures("no_docker")
def test_nothing_available_says_how_to_provide_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(pg, "find_bindir", lambda: None)
    with pytest.raises(pg.PostgresUnavailable, match="DATABASE_URL=postgresql://") as raised:
        pg.start_postgres()
    assert "apt-get install postgresql" in str(raised.value)


def test_with_database_keeps_everything_but_the_name() -> None:
    url = pg.with_database("postgresql://u:p@h:1/postgres?sslmode=require", "job ledger")
    assert url == "postgresql://u:p@h:1/job%20ledger?sslmode=require"


@pytest.mark.usefixtures("no_docker")
def test_no_docker_socket_is_answered_at_once() -> None:
    started = time.monotonic()
    assert pg.docker_answers() is False
    assert time.monotonic() - started < 0.1


@pytest.fixture
def http_answer() -> Iterator[tuple[socket.socket, list[bytes]]]:
    """A one-shot TCP server on 127.0.0.1 replying with whatever the test puts in the list."""
    reply: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"".join(reply))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield listener, reply
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", True),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", False),
        (b"SSH-2.0-OpenSSH_9.2\r\n", False),
    ],
)
def test_docker_ping_needs_an_http_200(
    monkeypatch: pytest.MonkeyPatch,
    http_answer: tuple[socket.socket, list[bytes]],
    answer: bytes,
    expected: bool,
) -> None:
    listener, reply = http_answer
    reply.append(answer)
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{listener.getsockname()[1]}")
    assert pg.docker_answers() is expected
