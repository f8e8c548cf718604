"""A TCP proxy on 127.0.0.1 that can take its endpoint down for a while (fault injection).

``TcpProxy(("127.0.0.1", port))`` listens on a free port of 127.0.0.1 and copies bytes both
ways between each client and the target, one thread per direction. :meth:`TcpProxy.down`
closes the listening socket (new connections are refused) and cuts every open connection;
:meth:`TcpProxy.up` listens again on the same port. The target itself keeps running, so
whatever state it holds (moto's queues live in its memory) survives the outage.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from types import TracebackType
from typing import Self

CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``down()`` / ``up()`` / ``outage(s)``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self.connections = 0
        """Client connections accepted (and forwarded) so far."""
        self.cut = 0
        """Open connections cut by :meth:`down`."""
        self.outages = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        with self._lock:
            return self._listener is not None

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        self._stop_listening(count=True)

    def _stop_listening(self, *, count: bool) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            victims = list(self._open)
            self._open.clear()
        if listener is not None:
            # shutdown() first: the accept loop's select() holds the socket open past a
            # bare close(), and connections would still be accepted meanwhile.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
            self.outages += count
        for sock in victims:
            _abort(sock)
        if count:
            self.cut += len(victims) // 2

    def up(self) -> None:
        """Listen again, on the same port."""
        with self._lock:
            if self._listener is None and not self._closed.is_set():
                self._listener = self._listen(self.port)

    def outage(self, seconds: float) -> None:
        """Down for ``seconds``, then up again (blocks the caller)."""
        self.down()
        try:
            time.sleep(seconds)
        finally:
            self.up()

    def close(self) -> None:
        self._closed.set()
        self._stop_listening(count=False)
        if self._thread.is_alive():
            self._thread.join(5)

    # -- inside ------------------------------------------------------------------------------

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        return listener

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                time.sleep(0.02)
                continue
            try:
                ready, _, _ = select.select([listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed by down() meanwhile
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _abort(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._listener is None:  # went down while connecting
                _abort(client)
                _abort(upstream)
                return
            self._open.update((client, upstream))
            self.connections += 1
        finished = threading.Semaphore(0)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(
                target=self._pump, args=(source, sink, finished), daemon=True
            ).start()
        finished.acquire()
        finished.acquire()
        with self._lock:
            self._open.discard(client)
            self._open.discard(upstream)
        client.close()
        upstream.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, finished: threading.Semaphore) -> None:
        """Copy until the end of ``source``'s stream, then pass the end on."""
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            finished.release()


def _abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a crashed endpoint would look to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
