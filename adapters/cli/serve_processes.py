"""``ledger serve --processes N``: N API processes on one port, the background parts once.

The parent binds the address and starts N children (``ledger serve --api-only`` with a
listening socket inherited, ADR 160). Each child has a socket of its own on the one port
(``SO_REUSEPORT``, ADR 181): the kernel spreads new connections over them by a hash of
each connection's addresses, where one shared accept queue let whichever child woke first
take most of a burst of connections. The parent holds every socket, so a restarted child
accepts what queued on its socket meanwhile. The parent itself runs the background parts (projection
runner, dispatcher, monitors, schedules, archive policy), so they run exactly once, and
supervises the children:

- a child that exits while the service runs (killed, crashed) is restarted on the same
  socket, keeping its index; more than ``MAX_RESTARTS`` in ``RESTART_WINDOW`` seconds
  means something is wrong at start-up: everything stops and serve exits 1;
- SIGTERM or SIGINT (once) asks every child to finish its requests and stop, then stops
  the parts; a second signal kills the children. The children are in a session of their
  own (a terminal's Ctrl-C reaches the parent only) and die with the parent (Linux's
  parent-death signal), so a killed parent leaves no API behind.

The children share what must be shared: the database (the limiter's counters, the key
store, the log) and the console's signing secret (``CONSOLE_SECRET``, generated once by
the parent when unset).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from adapters.http.process_info import (
    COUNT_VARIABLE,
    ID_VARIABLE,
    INDEX_VARIABLE,
    PARENT_VARIABLE,
    new_process_id,
)
from adapters.http.server import Part
from adapters.service.bootstrap import Container

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
STOP_SECONDS = 20.0
READY_SECONDS = 60.0
PR_SET_PDEATHSIG = 1


def listening_socket(
    host: str, port: int, backlog: int = 2048, *, reuse_port: bool = False
) -> socket.socket:
    """A listening socket for the children (inheritable); with ``reuse_port``, one that
    others may join on the same address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per child, all on one address (``SO_REUSEPORT``: the first
    binds, port 0 picking the port, the others join it); where the platform has no
    ``SO_REUSEPORT``, one socket that every child shares."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return [listening_socket(host, port)] * count
    first = listening_socket(host, port, reuse_port=True)
    sockets = [first]
    try:
        bound = first.getsockname()[1]
        sockets += [listening_socket(host, bound, reuse_port=True) for _ in range(count - 1)]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def inherited_socket(fd: int) -> socket.socket:
    """In a child: the parent's listening socket, with this child's death tied to the
    parent's (Linux ``PR_SET_PDEATHSIG``; elsewhere a child outlives a killed parent)."""
    _die_with_parent()
    return socket.socket(fileno=fd)


def _die_with_parent() -> None:
    parent = os.environ.get(PARENT_VARIABLE)
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent and os.getppid() != int(parent):  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def tell_ready(fd: int | None) -> None:
    """In a child: say on the parent's pipe that this process serves."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, b"r")
        os.close(fd)


@dataclass
class Children:
    """The API processes: started, restarted, stopped."""

    command: Sequence[str]
    """``ledger serve --api-only ...`` without the per-child options."""
    sockets: Sequence[socket.socket]
    """Child ``i`` listens on ``sockets[i]`` (the same socket for all without
    ``SO_REUSEPORT``)."""
    count: int
    env: dict[str, str]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
    """Each child's opaque id (its ``X-Served-By``), new at each start."""
    restarts: list[float] = field(default_factory=list)
    stopping: bool = False

    async def start_all(self) -> None:
        """Start every child and wait until each said it serves. They are started from
        this thread, which lives as long as the parent (the parent-death signal follows
        the thread that started a child, so never start one from a worker thread)."""
        read, write = os.pipe()
        try:
            for index in range(self.count):
                self._start(index, write)
        finally:
            os.close(write)
        try:
            await self._wait_ready(read)
        finally:
            os.close(read)

    def _start(self, index: int, ready_fd: int | None) -> None:
        self.ids[index] = new_process_id()
        env = {**self.env, INDEX_VARIABLE: str(index), COUNT_VARIABLE: str(self.count),
               PARENT_VARIABLE: str(os.getpid()), ID_VARIABLE: self.ids[index]}
        listen = self.sockets[index].fileno()
        fds = [listen]
        command = [*self.command, "--listen-fd", str(listen)]
        if ready_fd is not None:
            fds.append(ready_fd)
            command += ["--ready-fd", str(ready_fd)]
        self.processes[index] = subprocess.Popen(
            command, env=env, pass_fds=fds, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    async def _wait_ready(self, read: int) -> None:
        """Until every child said it serves (one byte each); a child that exits first, or
        a minute without them all, fails the start."""
        ready, deadline = 0, time.monotonic() + READY_SECONDS
        while ready < self.count:
            for index, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"API process {index} exited with {process.returncode} at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ready} of {self.count} API processes started")
            if select.select([read], [], [], 0)[0]:
                ready += len(os.read(read, self.count))
            else:
                await anyio.sleep(0.05)

    def restart_exited(self, say: Callable[[str], None]) -> None:
        """Restart each child that exited (raise when they keep exiting)."""
        for index, process in list(self.processes.items()):
            code = process.poll()
            if code is None or self.stopping:
                continue
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW] + [now]
            if len(self.restarts) > MAX_RESTARTS:
                raise RuntimeError(
                    f"API processes exited {len(self.restarts)} times in "
                    f"{RESTART_WINDOW:.0f}s (last: process {index}, exit {code})")
            said = f"API process {index} (pid {process.pid}, id {self.ids[index]})"
            self._start(index, None)
            say(f"{said} exited with {code}; restarted it as id {self.ids[index]}")

    def signal_all(self, signum: int) -> None:
        self.stopping = True
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)

    def wait_all(self, timeout: float = STOP_SECONDS) -> None:
        """Wait for every child to stop; kill those still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def pids(self) -> list[int]:
        return [p.pid for _, p in sorted(self.processes.items())]

    def described(self) -> str:
        """``pid 11 as 3f9a...`` for each child: which pid answers as which id."""
        return ", ".join(f"pid {process.pid} as {self.ids[index]}"
                         for index, process in sorted(self.processes.items()))


async def supervise(children: Children, say: Callable[[str], None]) -> str | None:
    """Restart exited children until SIGINT/SIGTERM, then stop them all (a second signal
    kills them). Returns why it stopped on its own (children that keep exiting), else
    ``None``."""
    failed: list[str] = []
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:

            async def stop() -> None:
                children.signal_all(signal.SIGTERM)
                await anyio.to_thread.run_sync(children.wait_all)
                tg.cancel_scope.cancel()

            async def watch() -> None:
                while not children.stopping:
                    try:
                        children.restart_exited(say)
                    except RuntimeError as error:
                        failed.append(str(error))
                        tg.start_soon(stop)
                        return
                    await anyio.sleep(0.2)

            tg.start_soon(watch)
            async for received in signals:
                name = signal.Signals(received).name
                if children.stopping:
                    say(f"received {name} again: killing the API processes")
                    children.signal_all(signal.SIGKILL)
                    continue
                say(f"received {name}: stopping {children.count} API processes")
                tg.start_soon(stop)
    return failed[0] if failed else None


def child_env(uses_postgres: bool) -> dict[str, str]:
    """The children's environment: the console's secret shared (generated once when
    ``CONSOLE_SECRET`` is unset; on the embedded default it is kept in the data dir)."""
    env = dict(os.environ)
    if uses_postgres and not env.get("CONSOLE_SECRET"):
        env["CONSOLE_SECRET"] = secrets.token_hex(32)
    return env


def child_command(host: str, port: int, log_level: str, no_ui: bool) -> list[str]:
    """``ledger serve --api-only`` for a child (``--listen-fd`` is added per child)."""
    command = [sys.executable, "-c", "from adapters.cli.app import main; main()", "serve",
               "--api-only", "--host", host, "--port", str(port), "--log-level", log_level]
    return [*command, "--no-ui"] if no_ui else command


def serve_many(
    container: Container, host: str, port: int, count: int, *, log_level: str,
    api_only: bool, no_ui: bool, started: Callable[[str, int], None],
    say: Callable[[str], None],
) -> str | None:
    """The parent of ``ledger serve --processes N``: the socket, the parts (unless
    ``api_only``), the children, until a signal. Returns why it failed, else ``None``."""
    sockets = listening_sockets(host, port, count)
    bound_host, bound_port = sockets[0].getsockname()[:2]
    children = Children(child_command(host, bound_port, log_level, no_ui), sockets, count,
                        child_env(container.settings.uses_postgres))

    async def run() -> str | None:
        async with contextlib.AsyncExitStack() as stack:
            parts: list[Part] = []
            if not api_only:
                from adapters.service.parts import service_parts

                parts = await stack.enter_async_context(service_parts(container))
            async with anyio.create_task_group() as tg:
                for part in parts:
                    await tg.start(part)
                await children.start_all()
                started(str(bound_host), int(bound_port))
                say(f"{count} API processes ({children.described()}); "
                    f"the background parts run once, in this process (pid {os.getpid()})")
                failed = await supervise(children, say)
                tg.cancel_scope.cancel()
        return failed

    try:
        return anyio.run(run)
    finally:
        children.signal_all(signal.SIGTERM)
        children.wait_all()
        for sock in sockets:
            sock.close()
