"""A real PostgreSQL server for tests and benchmarks.

`start_postgres()` finds one, in this order:

1. ``DATABASE_URL`` (``postgresql://...``) if set: an existing server, used as is;
2. testcontainers, only when a Docker engine answers a ``/_ping`` within half a second;
3. a throwaway cluster from the local PostgreSQL binaries (``initdb`` on ``PATH`` or under
   ``/usr/lib/postgresql/*/bin``), run as the ``postgres`` user when we are root;
4. otherwise `PostgresUnavailable`, which says how to provide one.

Every server can create and drop databases; only the local cluster can be stopped,
started and restarted (fault tests restart it under load).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

ShutdownMode = Literal["smart", "fast", "immediate"]

DOCKER_PING_TIMEOUT = 0.5
CONTAINER_IMAGE = os.environ.get("JOB_LEDGER_PG_IMAGE", "postgres:15")
SERVER_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
}

CREATE_DATABASE = sql.SQL("CREATE DATABASE {name}")
CREATE_DATABASE_FROM_TEMPLATE = sql.SQL("CREATE DATABASE {name} TEMPLATE {template}")
DROP_DATABASE = sql.SQL("DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server for tests: set DATABASE_URL=postgresql://..., start a Docker
    engine (testcontainers), or install the PostgreSQL server package (Debian:
    `apt-get install postgresql`) so that initdb and pg_ctl are available."""

    def __init__(self, detail: str = "") -> None:
        message = " ".join((self.__doc__ or "").split())
        super().__init__(f"{detail}\n{message}" if detail else message)


class RestartUnsupported(NotImplementedError):
    """Only the throwaway local cluster can be stopped, started or restarted."""


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


class PostgresServer:
    """A PostgreSQL server; `url` is the admin URL (the ``postgres`` database, or
    ``DATABASE_URL`` as given)."""

    supports_restart: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def close(self) -> None:
        """Release the server; a no-op for servers we did not start."""

    def create_database(self, name: str, template: str | None = None) -> str:
        if template is None:
            statement = CREATE_DATABASE.format(name=sql.Identifier(name))
        else:
            statement = CREATE_DATABASE_FROM_TEMPLATE.format(
                name=sql.Identifier(name), template=sql.Identifier(template)
            )
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)
        return with_database(self.url, name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(DROP_DATABASE.format(name=sql.Identifier(name)))

    def stop(self, mode: ShutdownMode = "fast") -> None:
        raise RestartUnsupported(f"{type(self).__name__} cannot be stopped by the tests")

    def start(self) -> None:
        raise RestartUnsupported(f"{type(self).__name__} cannot be started by the tests")

    def restart(self, mode: ShutdownMode = "fast") -> None:
        self.stop(mode)
        self.start()


class ContainerServer(PostgresServer):
    """PostgreSQL in a Docker container, via testcontainers."""

    def __init__(self, container: Any) -> None:
        self._container = container
        super().__init__(container.get_connection_url())

    def close(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.stop()


class LocalCluster(PostgresServer):
    """A throwaway cluster in a temporary directory, from the local binaries."""

    supports_restart = True

    def __init__(self, bindir: Path, base: Path, port: int, run_as: str | None) -> None:
        super().__init__(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        self.bindir = bindir
        self.base = base
        self.datadir = base / "data"
        self.logfile = base / "postgres.log"
        self.port = port
        self._run_as = run_as
        self._running = False

    def initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        settings = {
            **SERVER_SETTINGS,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.base}'",
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# job-ledger test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
            "-l", str(self.logfile), "-o", f"-p {self.port}",
        )  # fmt: skip
        self._running = True

    def stop(self, mode: ShutdownMode = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.datadir), "-m", mode)
        self._running = False

    def close(self) -> None:
        atexit.unregister(self.close)
        try:
            if self._running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self._run_as is not None:
            command = _as_user(self._run_as, command)
        result = subprocess.run(
            command,
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{shlex.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{self.log_tail()}"
            )


def start_postgres() -> PostgresServer:
    """Find or start a PostgreSQL server; the caller closes it (or uses `with`)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        if urlsplit(url).scheme not in {"postgresql", "postgres"}:
            raise PostgresUnavailable(f"DATABASE_URL must be postgresql://..., got {url!r}")
        return PostgresServer(url)
    bindir = find_bindir()
    if docker_answers():
        try:
            server = _start_container()
        except Exception as error:  # e.g. the image cannot be pulled
            if bindir is None:
                raise PostgresUnavailable(f"Docker answered, but: {error!r}") from error
            server = None  # the local binaries will do
        if server is not None:
            return server
    if bindir is None:
        raise PostgresUnavailable("Found no DATABASE_URL, no Docker engine and no initdb.")
    return _start_local_cluster(bindir)


def docker_answers(timeout: float = DOCKER_PING_TIMEOUT) -> bool:
    """Whether a Docker engine answers ``GET /_ping`` at ``DOCKER_HOST`` (or the default
    socket) within `timeout` seconds."""
    target = urlsplit(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    try:
        if target.scheme == "unix":
            if not os.path.exists(target.path):
                return False
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(target.path)
                return _ping(sock)
        if target.scheme in {"tcp", "http"} and target.hostname:
            address = (target.hostname, target.port or 2375)
            with socket.create_connection(address, timeout=timeout) as sock:
                return _ping(sock)
    except OSError:
        return False
    return False


def _ping(sock: socket.socket) -> bool:
    sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    status_line = sock.recv(256).split(b"\r\n", 1)[0]
    return status_line.startswith(b"HTTP/") and status_line.split(b" ")[1:2] == [b"200"]


def _start_container() -> PostgresServer | None:
    with warnings.catch_warnings():
        # testcontainers.postgres is deprecated in favour of .community.postgres (>= 4.15).
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:
            try:
                from testcontainers.postgres import PostgresContainer
            except ImportError:
                return None
        container = PostgresContainer(
            CONTAINER_IMAGE,
            username="postgres",
            password="postgres",
            dbname="postgres",
            driver=None,
        )
        options = (f"-c {key}={value}" for key, value in SERVER_SETTINGS.items())
        container.with_command(" ".join(("postgres", *options)))
        try:
            container.start()
        except BaseException:
            with contextlib.suppress(Exception):
                container.stop()
            raise
    return ContainerServer(container)


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: from PATH, else the newest
    /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates.extend(sorted(installed, key=_major_version, reverse=True))
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def _major_version(bindir: Path) -> tuple[int, str]:
    name = bindir.parent.name
    return (int(name), name) if name.isdigit() else (-1, name)


def _start_local_cluster(bindir: Path, attempts: int = 3) -> LocalCluster:
    run_as = "postgres" if os.geteuid() == 0 else None
    # postgres must reach the directory: use /tmp, not a root-only TMPDIR, when switching user.
    parent = os.environ.get("JOB_LEDGER_PG_TMPDIR") or ("/tmp" if run_as else None)
    attempt = 0
    while True:
        attempt += 1
        base = Path(tempfile.mkdtemp(prefix="job-ledger-pg-", dir=parent))
        if run_as is not None:
            shutil.chown(base, user=run_as, group=run_as)
        cluster = LocalCluster(bindir, base, _free_port(), run_as)
        atexit.register(cluster.close)
        try:
            cluster.initdb()
            cluster.start()
        except PostgresUnavailable:
            port_taken = "could not bind" in cluster.log_tail()
            cluster.close()
            if not port_taken or attempt >= attempts:
                raise
        else:
            return cluster


def _as_user(user: str, command: list[str]) -> list[str]:
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(command)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


__all__ = [
    "ContainerServer",
    "LocalCluster",
    "PostgresServer",
    "PostgresUnavailable",
    "RestartUnsupported",
    "ShutdownMode",
    "docker_answers",
    "find_bindir",
    "start_postgres",
    "with_database",
]
