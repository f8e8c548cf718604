"""``ledger serve --processes 2`` as an operator runs it: one port, two API processes, the
limiter exact across them, a killed child replaced, SIGTERM ending them all (ADR 160)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import environment, ledger
from tests.support.console import csrf_of

LEDGER = shutil.which("ledger")
LIMIT = 40
SERVED_BY = "x-served-by"


@dataclass
class Fleet:
    url: str
    pids: list[int]
    parent: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    """Each child's opaque ``X-Served-By`` id, in the order of ``pids``."""

    def said(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.1)
        pytest.fail(f"ledger serve never said {pattern!r}: {self.lines}")


def fresh(url: str) -> httpx.Client:
    """A client that opens a new connection per request (so either process may answer)."""
    return httpx.Client(base_url=url, timeout=30,
                        limits=httpx.Limits(max_keepalive_connections=0))


@pytest.fixture
def keys(tmp_path: Path, postgres_url: str) -> dict[str, str]:
    made = {}
    for role, extra in (("service", ["--customer", "acme"]), ("admin", [])):
        result = ledger(tmp_path, "keys", "create", "--role", role, *extra,
                        env={"DATABASE_URL": postgres_url})
        assert result.returncode == 0, result.stderr
        made[role] = result.stdout.splitlines()[-1]
    return made


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, keys: dict[str, str]) -> Iterator[Fleet]:
    assert LEDGER is not None
    env = environment({"DATABASE_URL": postgres_url, "RATE_LIMIT_SERVICE_PER_MINUTE": str(LIMIT)})
    env.pop("CONSOLE_SECRET", None)
    parent = subprocess.Popen(
        [LEDGER, "serve", "--processes", "2", "--port", "0", "--log-level", "warning"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    stderr = parent.stderr
    assert stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(
        line.rstrip("\n") for line in iter(stderr.readline, "")), daemon=True)
    reader.start()
    fleet = Fleet("", [], parent, lines)
    try:
        fleet.url = re.search(r"API on (http://\S+)", fleet.said("API on")).group(1)  # type: ignore[union-attr]
        children = re.findall(r"pid (\d+) as ([0-9a-f]{12})\b", fleet.said("2 API processes"))
        assert len(children) == 2
        fleet.pids = [int(pid) for pid, _ in children]
        fleet.ids = [id_ for _, id_ in children]
        yield fleet
    finally:
        if parent.poll() is None:
            parent.send_signal(signal.SIGTERM)
            parent.wait(60)
        reader.join(10)
        stderr.close()


def answering(url: str, tries: int = 200) -> set[str]:
    """The process ids ``/health`` names over ``tries`` fresh connections (stops at two);
    the header names the same id, and neither says a pid."""
    seen: set[str] = set()
    with fresh(url) as http:
        for _ in range(tries):
            answer = http.get("/health")
            assert answer.status_code in {200, 503}
            body = answer.json()["process"]
            assert body["processes"] == 2
            assert answer.headers[SERVED_BY] == body["id"]
            assert "pid" not in body
            seen.add(body["id"])
            if len(seen) == 2:
                break
    return seen


def served_by(url: str, connections: int = 64) -> Counter[str]:
    """Which process serves each of ``connections`` opened at once (before any request,
    as a pool of workers reconnecting does)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    socks = [socket.create_connection((host, int(port)), timeout=30) for _ in range(connections)]
    found: Counter[str] = Counter()
    try:
        for sock in socks:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for sock in socks:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            head = answer.split(b"\r\n\r\n", 1)[0].decode().lower()
            found[re.search(rf"^{SERVED_BY}: *(\S+)", head, re.M).group(1)] += 1  # type: ignore[union-attr]
    finally:
        for sock in socks:
            sock.close()
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_answer_and_sigterm_ends_them_all(fleet: Fleet) -> None:
    opened: list[tuple[str, object]] = []
    assert answering(fleet.url) == set(fleet.ids)
    assert not set(fleet.ids) & {str(pid) for pid in fleet.pids}
    spread = served_by(fleet.url)  # each process has its socket (ADR 181): about half each
    assert set(spread) == set(fleet.ids)
    assert min(spread.values()) >= 16, spread
    with httpx.Client(base_url=fleet.url, timeout=30,  # one keep-alive connection, kept
                      limits=httpx.Limits(keepalive_expiry=60)) as http:
        first = http.get("/health/live").headers[SERVED_BY]
        time.sleep(6)  # past uvicorn's default keep-alive (5 s), within a heartbeat interval
        again = http.get("/health/live",
                         extensions={"trace": lambda name, info: opened.append((name, info))})
        assert again.headers[SERVED_BY] == first
        assert not [name for name, _ in opened if name.startswith("connection.connect_tcp")]
    assert "the background parts run once" in fleet.said("background parts")
    fleet.parent.send_signal(signal.SIGTERM)
    assert fleet.parent.wait(60) == 0
    time.sleep(0.5)
    assert fleet.lines[-1] == "ledger serve: stopped", fleet.lines
    assert not [pid for pid in fleet.pids if alive(pid)]


@pytest.mark.postgres
@pytest.mark.slow
def test_the_limiter_is_exact_across_both_processes(
    fleet: Fleet, keys: dict[str, str]
) -> None:
    if time.time() % 60 > 45:  # one fixed window for the whole burst
        time.sleep(61 - time.time() % 60)
    auth = {"authorization": f"Bearer {keys['service']}"}

    def one(_: int) -> tuple[int, str]:
        with fresh(fleet.url) as http:
            answer = http.get(f"/jobs/{uuid.uuid4()}", headers=auth)
            return answer.status_code, answer.headers[SERVED_BY]

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(one, range(3 * LIMIT)))
    statuses = Counter(status for status, _ in answers)
    assert statuses == {404: LIMIT, 429: 2 * LIMIT}, statuses
    assert {served_by for _, served_by in answers} == set(fleet.ids)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_killed_child_is_replaced_and_sessions_cross_processes(
    fleet: Fleet, keys: dict[str, str]
) -> None:
    victim, survivor = fleet.ids
    os.kill(fleet.pids[0], signal.SIGKILL)
    restarted = re.search(r"restarted it as id ([0-9a-f]{12})", fleet.said(
        rf"API process \d \(pid {fleet.pids[0]}, id {victim}\) exited with -9; restarted"))
    assert restarted is not None
    deadline = time.monotonic() + 60
    seen = answering(fleet.url)
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = answering(fleet.url)
    assert seen == {survivor, restarted.group(1)}

    with fresh(fleet.url) as http:  # signed in on one process, seen by both
        token = csrf_of(http.get("/ui/login").text)
        signed = http.post("/ui/login", data={"csrf": token, "api_key": keys["admin"]})
        assert signed.status_code == 303, signed.text
        served = set()
        for _ in range(100):
            page = http.get("/ui/jobs")
            assert page.status_code == 200, page.status_code
            served.add(page.headers[SERVED_BY])
            if len(served) == 2:
                break
        assert len(served) == 2


def test_sqlite_refuses_more_processes_in_one_line(tmp_path: Path) -> None:
    refused = ledger(tmp_path, "serve", "--processes", "2", "--port", "0")
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("ledger serve: error: --processes above 1 needs PostgreSQL")
