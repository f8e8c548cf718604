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
from typing import Annotated

import anyio
import typer

from adapters.cli.errors import FAILED, error_line, reported
from adapters.service.bootstrap import build, load_settings
from adapters.tracing import configure_logging

PROGRAM = "ledger serve"


def _say(message: str) -> None:
    sys.stderr.write(f"ledger serve: {message}\n")
    sys.stderr.flush()


def serve_command(
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
) -> None:
    """Run the service in one process: the HTTP API, the projection runner, the dispatcher,
    the stale monitor and the dead-letter monitor with alert delivery (--api-only: the API
    alone)."""
    with reported(PROGRAM):  # LOG_FORMAT=json: one JSON object per line (ADR 125)
        configure_logging(log_level.upper())
    with reported(PROGRAM):
        settings = load_settings()
        from adapters.http.app import create_app
        from adapters.http.server import serve, tune_for_serving
        from adapters.http.wiring import HttpSettings, build_http, open_allowed

        http = HttpSettings.from_env(os.environ)
        container = build(settings)
    try:
        parts = build_http(container, host=host, http=http, ui=not no_ui)
        keys = parts.access.verifier.keys_exist()
        store = container.backend.describe()
        if open_allowed(container.backend, host) and not keys:
            access = "OPEN: no API key exists, so none is needed (loopback only; create one "\
                "with `ledger keys create --role admin` to require keys)"
        elif keys:
            access = "API keys required"
        else:
            access = "API keys required, and none exists yet: create one with "\
                "`ledger keys create --role admin`"

        def started(bound_host: str, bound_port: int) -> None:
            _say(f"API on http://{bound_host}:{bound_port} ({store}); {access}")
            if not no_ui:
                _say(f"console on http://{bound_host}:{bound_port}/ui")

        app = create_app(parts)
        tune_for_serving()

        async def run() -> None:
            if api_only:
                await serve(app, host, port, on_started=started, log_level=log_level.lower())
                return
            from adapters.service.parts import service_parts

            async with service_parts(container) as parts:
                await serve(app, host, port, parts=parts, on_started=started,
                            log_level=log_level.lower())

        anyio.run(run, backend_options={"use_uvloop": _have_uvloop()})
    except KeyboardInterrupt:
        pass
    except OSError as error:  # the port is taken, say
        error_line(str(error), PROGRAM)
        raise typer.Exit(FAILED) from None
    finally:
        container.close()
    _say("stopped")


def _have_uvloop() -> bool:
    """uvloop (libuv) roughly halves the event loop's own cost per request; use it when
    installed (it is a dependency on Linux and macOS)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
