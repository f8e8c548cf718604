"""Regression (found in review): the dispatcher did not reconnect after a PostgreSQL
restart. Its failed round ended the part, so ``ledger serve`` stopped and ``ledger monitor
dispatch`` exited (leaning on a restart policy). It now logs, backs off, opens a fresh
session, retakes its lock and reads its tracked position again: a page sent but not
recorded is sent again, and no event is skipped.

The projection runner had the same dead session (found while fixing the dispatcher): in
``ledger serve`` and ``ledger projections run`` a restart ended it. It now starts a new
runner on a new session, which resumes each view from its committed position.

The tests restart the session's throwaway cluster (skipped on a server the tests cannot
restart) and use the local queue on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from uuid import UUID, uuid4

import anyio
import httpx
import pytest
from anyio.abc import TaskStatus

from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.dispatcher import DISPATCH
from adapters.service.parts import Part, dispatcher_part, projection_part
from adapters.service.settings import Settings
from ledger.commands import EnqueueJob
from ledger.ports.transport import JobMessage, Outgoing, Received, Transport
from tests.support.pg import PostgresServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEDGER = shutil.which("ledger")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def container(postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
              ) -> Iterator[Container]:
    if not postgres_server.supports_restart:
        pytest.skip(f"cannot restart {postgres_server!r}")
    wired = build(Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url))
    # These tests are the dispatcher's: its enqueues append as a process without the
    # outbox does (ADR 151: an older process, SQS), so every message is the dispatcher's.
    wired.ledger.outbox = None
    yield wired
    wired.close()


def enqueue(container: Container, count: int) -> list[UUID]:
    return [
        container.ledger.execute(EnqueueJob(customer_id="acme"), utc_now()).job_id
        for _ in range(count)
    ]


def dispatched_position(container: Container) -> tuple[int, int]:
    """(the dispatcher's tracked position, the head of the log)."""
    store = container.backend.open_views()
    try:
        return store.tracking(DISPATCH).position, store.head()
    finally:
        store.close()


def start_ledger(args: list[str], url: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
    env = {k: v for k, v in os.environ.items()
           if k not in ("SQS_QUEUE_URL", "SQS_DLQ_URL", "LEDGER_DATA_DIR")}
    env["DATABASE_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with log.open("w") as out:
        return subprocess.Popen([LEDGER, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_until(check: Callable[[], bool], seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


class StopsTheDatabaseOnFirstSend:
    """Forwards to the local queue; right after its first send (before the dispatcher can
    record its position) it stops PostgreSQL. Counts the sends of each event."""

    def __init__(self, inner: Transport, server: PostgresServer) -> None:
        self.inner = inner
        self.server = server
        self.sends: Counter[str] = Counter()
        self.stopped = anyio.Event()

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        ids = await self.inner.send_batch(entries)
        for entry in entries:
            message = entry.message if isinstance(entry, Outgoing) else entry
            self.sends[message.dedup_key] += 1
        if not self.stopped.is_set():
            await anyio.to_thread.run_sync(self.server.stop)
            self.stopped.set()
        return ids


async def receive_all(transport: Transport, want: set[UUID], seconds: float) -> set[UUID]:
    got: set[UUID] = set()
    deadline = time.monotonic() + seconds
    while not want <= got and time.monotonic() < deadline:
        received: list[Received] = await transport.receive(max_messages=10, wait_seconds=0.2)
        for message in received:
            got.add(message.message.job_id)
            await transport.delete(message)
    return got


def watching(part: Part, ended: list[str]) -> Part:
    """``part``, noting in ``ended`` how it ended (the error, or "returned")."""

    async def watched(*, task_status: TaskStatus[None]) -> None:
        try:
            await part(task_status=task_status)
        except BaseException as error:
            ended.append(repr(error))
            raise
        ended.append("returned")

    return watched

def test_the_serve_dispatcher_part_survives_a_restart_and_resends_the_unrecorded_page(
    container: Container, postgres_server: PostgresServer
) -> None:
    transport = build_transport(container.settings, container.backend)
    stopping = StopsTheDatabaseOnFirstSend(transport, postgres_server)
    before = enqueue(container, 5)
    part = dispatcher_part(container, stopping)  # type: ignore[arg-type]
    ended: list[str] = []
    started: list[bool] = []
    watched = watching(part, ended)

    async def main() -> list[UUID]:
        async with anyio.create_task_group() as tg:
            await tg.start(watched)
            with anyio.fail_after(60):
                await stopping.stopped.wait()  # sent, position not recorded, database down
                await anyio.sleep(2.0)  # a few failed rounds, reconnects refused
                await anyio.to_thread.run_sync(postgres_server.start)
                started.append(True)
                after = await anyio.to_thread.run_sync(enqueue, container, 5)
                got = await receive_all(transport, set(before + after), 30)
                assert got == set(before + after)
                while True:  # the resent page and the new one recorded
                    position, head = await anyio.to_thread.run_sync(
                        dispatched_position, container)
                    if position == head:
                        break
                    await anyio.sleep(0.1)
                assert not ended, ended  # the part still runs
            tg.cancel_scope.cancel()
        return after

    try:
        after = anyio.run(main)
    finally:
        if stopping.stopped.is_set() and not started:  # leave the server up for the others
            postgres_server.start()
        anyio.run(transport.aclose)
    assert len(ended) == 1, ended
    assert "Cancelled" in ended[0], ended  # ended by the test alone
    first_sends = [stopping.sends[f"{job}:v1"] for job in before]
    assert min(first_sends) >= 2, first_sends  # sent, not recorded, so sent again
    assert [stopping.sends[f"{job}:v1"] for job in after] == [1] * 5


def test_ledger_monitor_dispatch_keeps_running_across_a_restart(
    container: Container, postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "dispatch.log"
    process = start_ledger(["monitor", "dispatch"], postgres_url, tmp_path, log)
    transport = build_transport(container.settings, container.backend)
    try:
        before = enqueue(container, 3)
        assert anyio.run(receive_all, transport, set(before), 30.0) == set(before)
        postgres_server.restart()
        after = enqueue(container, 3)
        assert anyio.run(receive_all, transport, set(after), 30.0) == set(after), (
            log.read_text())
        assert process.poll() is None, log.read_text()  # it did not exit
    finally:
        anyio.run(transport.aclose)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(30)
    output = log.read_text()
    assert process.returncode == 0, output
    assert "round failed" in output, output
    assert "Traceback" not in output, output


def job_status_position(container: Container) -> tuple[int, int]:
    store = container.backend.open_views()
    try:
        return store.tracking("job_status").position, store.head()
    finally:
        store.close()


def test_the_serve_projection_part_survives_a_restart(
    container: Container, postgres_server: PostgresServer
) -> None:
    part = projection_part(container, poll_interval=0.1)
    ended: list[str] = []
    watched = watching(part, ended)

    async def caught_up() -> None:
        while True:
            position, head = await anyio.to_thread.run_sync(job_status_position, container)
            if position == head:
                return
            await anyio.sleep(0.1)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(watched)
            with anyio.fail_after(60):
                await anyio.to_thread.run_sync(enqueue, container, 3)
                await caught_up()
                await anyio.to_thread.run_sync(postgres_server.restart)
                await anyio.sleep(1.0)  # the runner meets its dead session
                await anyio.to_thread.run_sync(enqueue, container, 3)
                await caught_up()
                assert not ended, ended  # the part still runs
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert len(ended) == 1, ended
    assert "Cancelled" in ended[0], ended


def test_ledger_projections_run_keeps_running_across_a_restart(
    container: Container, postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "projections.log"
    process = start_ledger(["projections", "run", "--poll-interval", "0.1"], postgres_url,
                           tmp_path, log)

    def caught_up() -> bool:
        position, head = job_status_position(container)
        return position == head

    try:
        enqueue(container, 3)
        wait_until(caught_up, 30, log)
        postgres_server.restart()
        time.sleep(1.0)  # the runner meets its dead session
        enqueue(container, 3)
        wait_until(caught_up, 30, log)
        assert process.poll() is None, log.read_text()  # it did not exit
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(30)
    output = log.read_text()
    assert process.returncode == 0, output
    assert "reconnecting" in output, output
    assert "Traceback" not in output, output


def test_ledger_serve_keeps_serving_and_dispatching_across_a_restart(
    container: Container, postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:

    from ledger.access import Role, new_key

    key, record = new_key(Role.ADMIN, None, "test", utc_now())
    container.backend.key_store().add(record)
    log = tmp_path / "serve.log"
    process = start_ledger(["serve", "--port", "0"], postgres_url, tmp_path, log)
    transport = build_transport(container.settings, container.backend)

    def url() -> str | None:
        found = re.search(r"API on (http://\S+)", log.read_text())
        return found.group(1) if found else None

    def enqueue_over_http(http: httpx.Client, count: int) -> set[UUID]:
        ids = set()
        for _ in range(count):
            body = {"customer_id": "acme", "idempotency_key": str(uuid4())}
            answer = http.post("/jobs", json=body)
            deadline = time.monotonic() + 20
            # Right after the restart the rate limiter's first query meets its dead
            # connection: it falls back to memory and writes get 503 + Retry-After until its
            # probe (every second) finds the database again; a client retries.
            while answer.status_code == 503 and time.monotonic() < deadline:
                time.sleep(float(answer.headers.get("retry-after", "1")))
                answer = http.post("/jobs", json=body)
            assert answer.status_code == 201, answer.text
            ids.add(UUID(answer.json()["job_id"]))
        return ids

    try:
        wait_until(lambda: url() is not None or process.poll() is not None, 60, log)
        base = url()
        assert base is not None, log.read_text()
        with httpx.Client(base_url=base, timeout=10,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            before = enqueue_over_http(http, 3)
            assert anyio.run(receive_all, transport, before, 30.0) == before
            postgres_server.restart()
            time.sleep(1.0)  # every part meets its dead session
            wait_until(lambda: http.get("/health/ready").status_code == 200, 30, log)
            after = enqueue_over_http(http, 3)
            assert anyio.run(receive_all, transport, after, 30.0) == after, log.read_text()
            last = sorted(after)[0]
            wait_until(lambda: http.get(f"/jobs/{last}").status_code == 200, 30, log)
            assert process.poll() is None, log.read_text()  # it did not exit
    finally:
        anyio.run(transport.aclose)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(30)
    output = log.read_text()
    assert process.returncode == 0, output
    assert "Traceback" not in output, output
