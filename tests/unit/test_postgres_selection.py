"""How the code base chooses PostgreSQL: ``backend_for`` from the settings, and
tests.support.pg choosing a server for the tests (without starting one)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.postgres.backend import EVENTS_TABLE, PostgresBackend
from adapters.service.backend import backend_for
from adapters.service.bootstrap import describe_transport
from adapters.service.settings import Settings
from adapters.sqlite.backend import SqliteBackend
from ledger.errors import StoreUnavailable
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


def test_backend_is_the_sqlite_file_without_a_database_url(tmp_path: Path) -> None:
    settings = Settings.from_env({"LEDGER_DATA_DIR": str(tmp_path)})
    backend = backend_for(settings)
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / "ledger.sqlite3"
    assert backend.name == "sqlite"
    assert backend.open_without_keys is True
    assert backend.eventsourcing_env()["PERSISTENCE_MODULE"] == (
        "adapters.sqlite.event_recorder:LedgerSqliteFactory"
    )
    assert describe_transport(settings, backend) == f"the local queue in SQLite {backend.path}"


def test_backend_is_postgresql_with_a_database_url(tmp_path: Path) -> None:
    url = "postgresql://u:p@db.example:5433/ledger"
    settings = Settings.from_env({"DATABASE_URL": url, "LEDGER_DATA_DIR": str(tmp_path)})
    backend = backend_for(settings)
    assert isinstance(backend, PostgresBackend)
    assert backend.url == url
    assert backend.name == "postgres"
    assert backend.events_table == EVENTS_TABLE
    assert backend.open_without_keys is False
    env = backend.eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "adapters.postgres.event_recorder:LedgerPostgresFactory"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "db.example", "5433", "ledger"
    )
    assert not list(tmp_path.iterdir())  # nothing opened, nothing created


def test_drivers_raise_the_ledgers_errors(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(StoreUnavailable, match="SQLite"):
        SqliteBackend(not_a_directory / "ledger.sqlite3").open_views()
    nobody_listens = "postgresql://ledger@127.0.0.1:1/ledger"
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        PostgresBackend(nobody_listens).migrate()
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        PostgresBackend(nobody_listens).key_store().list()
