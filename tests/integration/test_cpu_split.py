"""bench.cpu_split reads a process tree's CPU from /proc, the time of children that
already exited included (what PostgreSQL's backends do between two reads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.cpu_split import Window, group, postmaster_of, processes, tree_seconds

BURN = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"
PARENT = (
    "import subprocess, sys, time\n"
    "sys.stdin.readline()\n"  # the test's first read is taken
    "subprocess.run([sys.executable, '-c', {child!r}], check=True)\n"  # exits, reaped
    "print('reaped', flush=True)\n"
    "sys.stdin.read()\n"  # stays alive until the test closes stdin
)


def test_a_tree_counts_its_exited_children() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(child=BURN.format(s=0.4))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert parent.stdin is not None
    assert parent.stdout is not None
    try:
        window = Window({"tree": group([parent.pid])})
        window.start()
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == "reaped\n"
        assert not [pid for pid, (ppid, _) in processes().items() if ppid == parent.pid]
        split = window.stop(jobs=1, wall=1.0)
        assert split.seconds["tree"] >= 0.35  # the child's 0.4 s, now in the parent's cutime
        assert tree_seconds(parent.pid) >= 0.35
    finally:
        parent.stdin.close()
        parent.stdout.close()
        parent.wait(10)


def test_a_gone_process_reads_zero() -> None:
    done = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert done.returncode == 0
    assert tree_seconds(2**22 + 7) == 0.0


@pytest.mark.postgres
def test_the_postmaster_is_found_from_a_backend(postgres_url: str) -> None:
    for _ in range(20):  # the backend it asks exits with its connection: no race with that
        postmaster = postmaster_of(postgres_url)
        assert postmaster is not None
        assert tree_seconds(postmaster) > 0
