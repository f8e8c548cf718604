"""``ledger projections`` as real processes: killed with SIGKILL mid-page, taken over by a
second runner, driven from the command line after ``ledger demo``."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from projections.rebuild import verify
from projections.registry import VIEWS, get_view
from projections.store import ViewStore
from tests.support.projection_env import (
    Backend,
    Workload,
    reference_tables,
    store_tables,
)

LEDGER = shutil.which("ledger")
CONFIG = ("DATABASE_URL", "LEDGER_DATA_DIR", "STALE_THRESHOLD_MINUTES")


def environment(backend: Backend) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env.update(backend.env)
    env["COLUMNS"] = "200"
    return env


def ledger(backend: Backend, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
    return subprocess.run(
        [LEDGER, *args], cwd=cwd, env=environment(backend), capture_output=True, text=True,
        timeout=120, check=False,
    )


def start_runner(backend: Backend, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    assert LEDGER is not None
    return subprocess.Popen(
        [LEDGER, "projections", "run", "--poll-interval", "0.05", *args], cwd=cwd,
        env=environment(backend), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


class Appender:
    """Appends events from a thread until stopped."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self.workload.step(10)
                time.sleep(0.005)
        except BaseException as error:  # surfaced by the test
            self.error = error

    def __enter__(self) -> Appender:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(60)
        assert self.error is None, self.error


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def owner_of(store: ViewStore, view: str) -> str | None:
    return store.tracking(view).owner


def test_views_stay_exactly_once_when_the_runner_is_killed_again_and_again(
    backend: Backend, tmp_path: Path
) -> None:
    rng = random.Random(20261128)
    workload = Workload(backend.ledger(), seed=3)
    workload.run(5)
    store = backend.store()
    host = socket.gethostname()
    positions = []
    with Appender(workload):
        for _ in range(12):
            runner = start_runner(backend, tmp_path, "--page-size", "15")
            me = f"{host}:{runner.pid}"
            try:
                wait_for(lambda me=me: any(owner_of(store, v) == me for v in VIEWS), 30,
                         "the runner to commit its first page")
                time.sleep(rng.uniform(0, 0.3))  # then anywhere in its pages
            finally:
                runner.send_signal(signal.SIGKILL)
                runner.wait(10)
            positions.append(store.tracking("job_status").position)
    advanced = sum(1 for a, b in itertools.pairwise(positions) if b > a)
    assert advanced >= 3, f"the runner hardly ran between kills: {positions}"
    done = ledger(backend, "projections", "run", "--once", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    head = store.head()
    for view in VIEWS.values():
        assert store.tracking(view.name).position == head
        assert store_tables(store, view) == reference_tables(store, view, head), view.name
    checked = ledger(backend, "projections", "verify", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "DIFFERENT" not in checked.stdout


def test_a_waiting_runner_takes_over_when_the_first_is_killed(
    backend: Backend, tmp_path: Path
) -> None:
    workload = Workload(backend.ledger(), seed=5)
    workload.run(5)
    store = backend.store()
    host = socket.gethostname()
    with Appender(workload):
        first = start_runner(backend, tmp_path, "--view", "job_status", "--page-size", "20")
        wait_for(lambda: owner_of(store, "job_status") == f"{host}:{first.pid}", 20,
                 "the first runner to feed job_status")
        second = start_runner(backend, tmp_path, "--view", "job_status", "--page-size", "20")
        try:
            time.sleep(1.5)
            assert second.poll() is None, "the second runner should wait, not exit"
            assert owner_of(store, "job_status") == f"{host}:{first.pid}"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            wait_for(lambda: owner_of(store, "job_status") == f"{host}:{second.pid}", 20,
                     "the second runner to take job_status over")
            taken = store.tracking("job_status").position
            wait_for(lambda: store.tracking("job_status").position > taken, 20,
                     "the second runner to make progress")
        except BaseException:
            second.kill()
            raise
    wait_for(lambda: store.tracking("job_status").position == store.head(), 30,
             "the second runner to catch up")
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    view = get_view("job_status")
    assert verify(backend.store(), backend.store(), view).equal
    head = store.head()
    assert store_tables(store, view) == reference_tables(store, view, head)


def test_demo_then_status_rebuild_and_verify_from_the_command_line(
    backend: Backend, tmp_path: Path
) -> None:
    demo = ledger(backend, "demo", "--json", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    status = ledger(backend, "projections", "status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert [r["view"] for r in rows] == list(VIEWS)
    head = rows[0]["head"]
    assert head > 0
    assert all(r["lag"] == head - r["position"] for r in rows)
    for name in VIEWS:
        rebuilt = ledger(backend, "projections", "rebuild", name, cwd=tmp_path)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert f"rebuilt {name} from {head} events" in rebuilt.stdout
    after = json.loads(ledger(backend, "projections", "status", "--json", cwd=tmp_path).stdout)
    positions = [(r["position"], r["lag"], r["generation"]) for r in after]
    assert positions == [(head, 0, 1)] * len(VIEWS)
    verified = ledger(backend, "projections", "verify", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("equal") == sum(len(v.tables) for v in VIEWS.values())

    store = backend.store()
    report = json.loads(demo.stdout)
    corrupt(store, "UPDATE job_status SET status = 'dead_lettered' WHERE job_id = %s",
            report["dead_lettered_job"])  # redriven and completed in the ledger
    broken = ledger(backend, "projections", "verify", "job_status", cwd=tmp_path)
    assert broken.returncode == 1
    assert "first differing rows" in broken.stdout
    assert report["dead_lettered_job"] in broken.stdout
    assert broken.stderr.strip() == (
        "ledger: error: rebuilt view differs from the live one: job_status"
    )
    assert "Traceback" not in broken.stderr

    unknown = ledger(backend, "projections", "rebuild", "nope", cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("ledger: error: no view named 'nope'")
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_a_broken_event_stops_the_command_line_runner_with_one_line(
    backend: Backend, tmp_path: Path
) -> None:
    Workload(backend.ledger()).run(3)
    store = backend.store()
    table = "jobledger_events" if backend.name == "postgres" else "stored_events"
    stranger = "6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11"
    originator = stranger if backend.name == "postgres" else stranger.replace("-", "")
    corrupt(store, f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                   "VALUES (%s, 1, 'ledger.job:Job.Vanished', '{}')", originator)
    position = store.head()
    done = ledger(backend, "projections", "run", "--once", "--view", "queue_history",
                  cwd=tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ledger: error: view 'queue_history' stopped at event")
    assert f"event {position} (topic 'ledger.job:Job.Vanished'" in last
    assert "Traceback" not in done.stderr
    status = json.loads(ledger(backend, "projections", "status", "--json", cwd=tmp_path).stdout)
    by_view = {r["view"]: r for r in status}
    assert by_view["queue_history"]["position"] == position - 1
    assert "unknown topic" in by_view["queue_history"]["error"]


def corrupt(store: ViewStore, statement: str, value: str) -> None:
    """Test-only writes behind the views' back."""
    if store.backend == "postgres":
        from psycopg import sql

        store.conn.execute(sql.SQL(statement), (value,))  # type: ignore[attr-defined]
    else:
        store.conn.execute(statement.replace("%s", "?"), (value,))  # type: ignore[attr-defined]
