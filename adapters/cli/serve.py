"""``ledger serve [--host --port]``: the service, its parts in one anyio task group.

The parts: the HTTP API (with its batch writer, limiter and health monitor), the
projection runner, the dispatcher (sends jobs to the transport from the log), the stale
monitor and the dead-letter monitor with alert delivery (:data:`adapters.http.server.Part`).
Each can also run alone (``ledger projections run``, ``ledger monitor dispatch|stale|dlq``)
for deployments that scale them separately; ``--api-only`` runs just the API.

Access: on the embedded default, listening on loopback only, with no API key created, the
API runs open and says so; on any other address, or on PostgreSQL, every route but
``/health*``, ``/metrics`` and ``/schema`` needs a key (``ledger keys create``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import anyio
import typer

from adapters.cli.errors import FAILED, error_line, reported
from adapters.cli.serve_processes import inherited_socket, tell_ready
from adapters.service.bootstrap import Container, build, load_settings
from adapters.tracing import configure_logging

PROGRAM = "ledger serve"
USAGE = 2
SQLITE_ONE_PROCESS = (
    "--processes above 1 needs PostgreSQL (DATABASE_URL): the embedded SQLite database "
    "takes one writer at a time, so more API processes would only wait for each other"
)


def _say(message: str) -> None:
    sys.stderr.write(f"ledger serve: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Serving:
    """What ``ledger serve`` was asked for."""

    host: str
    port: int
    log_level: str
    api_only: bool
    ui: bool

    def announce(self, store: str, access: str) -> Callable[[str, int], None]:
        """What to say once the API listens."""

        def started(bound_host: str, bound_port: int) -> None:
            _say(f"API on http://{bound_host}:{bound_port} ({store}); {access}")
            if self.ui:
                _say(f"console on http://{bound_host}:{bound_port}/ui")

        return started


def serve_command(  # noqa: PLR0917 - typer options
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    log_level: Annotated[
        str, typer.Option(help="Log level: debug, info, warning, error.")
    ] = "info",
    api_only: Annotated[
        bool, typer.Option("--api-only", help="Only the API (run the other parts apart).")
    ] = False,
    no_ui: Annotated[
        bool, typer.Option("--no-ui", help="Without the web console at /ui.")
    ] = False,
    processes: Annotated[int, typer.Option(
        min=1, max=64, envvar="SERVE_PROCESSES",
        help="API processes sharing the port (PostgreSQL only; the other parts run once).",
    )] = 1,
    listen_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    ready_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run the service: the HTTP API, the projection runner, the dispatcher, the stale
    monitor and the dead-letter monitor with alert delivery (--api-only: the API alone;
    --processes N: N API processes on the port, the other parts once)."""
    with reported(PROGRAM):  # LOG_FORMAT=json: one JSON object per line (ADR 125)
        configure_logging(log_level.upper())
    asked = Serving(host, port, log_level.lower(), api_only, not no_ui)
    with reported(PROGRAM):
        settings = load_settings()
        if processes > 1 and not settings.uses_postgres:
            error_line(SQLITE_ONE_PROCESS, PROGRAM)
            raise typer.Exit(USAGE)
        container = build(settings)
    if listen_fd is None and processes > 1:
        _serve_processes(container, asked, processes)
    else:
        _serve_one(container, asked, listen_fd, ready_fd)


def _access_line(open_now: bool, keys: bool) -> str:
    if open_now and not keys:
        return "OPEN: no API key exists, so none is needed (loopback only; create one "\
            "with `ledger keys create --role admin` to require keys)"
    if keys:
        return "API keys required"
    return "API keys required, and none exists yet: create one with "\
        "`ledger keys create --role admin`"


def _serve_one(
    container: Container, asked: Serving, listen_fd: int | None, ready_fd: int | None
) -> None:
    """The API (and unless ``--api-only`` every part) in this process; with ``listen_fd``,
    one child of ``--processes`` on the parent's socket."""
    from adapters.http.app import create_app
    from adapters.http.server import serve, tune_for_serving
    from adapters.http.wiring import HttpSettings, build_http, open_allowed

    host, level = asked.host, asked.log_level
    try:
        with reported(PROGRAM):
            http = HttpSettings.from_env(os.environ)
        parts = build_http(container, host=host, http=http, ui=asked.ui)
        access = _access_line(open_allowed(container.backend, host),
                              parts.access.verifier.keys_exist())
        started = asked.announce(container.backend.describe(), access)
        if listen_fd is not None:  # a child of --processes: the parent says where
            started = lambda _host, _port: tell_ready(ready_fd)  # noqa: E731
        app = create_app(parts)
        tune_for_serving()
        sock = None if listen_fd is None else inherited_socket(listen_fd)

        async def run() -> None:
            if asked.api_only:
                await serve(app, host, asked.port, on_started=started, log_level=level,
                            sock=sock)
                return
            from adapters.service.parts import service_parts

            async with service_parts(container) as parts:
                await serve(app, host, asked.port, parts=parts, on_started=started,
                            log_level=level)

        anyio.run(run, backend_options={"use_uvloop": _have_uvloop()})
    except KeyboardInterrupt:
        pass
    except OSError as error:  # the port is taken, say
        error_line(str(error), PROGRAM)
        raise typer.Exit(FAILED) from None
    finally:
        container.close()
    _say("stopped" if listen_fd is None else f"API process (pid {os.getpid()}) stopped")


def _have_uvloop() -> bool:
    """uvloop (libuv) roughly halves the event loop's own cost per request; use it when
    installed (it is a dependency on Linux and macOS)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _serve_processes(container: Container, asked: Serving, count: int) -> None:
    """``--processes N``: the parent (ADR 160); exits 1 when its children keep dying."""
    from adapters.cli.serve_processes import serve_many

    try:
        access = _access_line(False, container.backend.key_store().any_active())
        started = asked.announce(container.backend.describe(), access)
        failed = serve_many(container, asked.host, asked.port, count,
                            log_level=asked.log_level, api_only=asked.api_only,
                            no_ui=not asked.ui, started=started, say=_say)
    except (OSError, RuntimeError) as error:
        error_line(str(error), PROGRAM)
        raise typer.Exit(FAILED) from None
    finally:
        container.close()
    if failed is not None:
        error_line(failed, PROGRAM)
        raise typer.Exit(FAILED)
    _say("stopped")
