"""``ledger serve`` and ``ledger keys`` as a user runs them: real processes, real ports."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

LEDGER = shutil.which("ledger")
CONFIG_VARIABLES = ("DATABASE_URL", "LEDGER_DATA_DIR", "SQS_QUEUE_URL", "SQS_DLQ_URL")


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def ledger(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert LEDGER is not None, "the ledger script is missing: pip install -e '.[test]'"
    return subprocess.run(
        [LEDGER, *args], cwd=cwd, env=environment(env), capture_output=True, text=True,
        timeout=120, check=False,
    )


@contextmanager
def serving(cwd: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """``ledger serve --port 0``; yields its URL and the lines it printed so far."""
    assert LEDGER is not None
    process = subprocess.Popen(
        [LEDGER, "serve", "--port", "0", "--log-level", "warning"], cwd=cwd,
        env=environment(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        url = None
        while url is None:
            line = process.stderr.readline()
            if not line:
                pytest.fail(f"ledger serve exited before serving: {lines}")
            lines.append(line.rstrip("\n"))
            found = re.search(r"API on (http://\S+)", line)
            url = found.group(1) if found else None
        yield url, lines
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
        lines.extend(rest.splitlines())
    assert process.returncode == 0, lines
    assert lines[-1] == "ledger serve: stopped", lines


def test_serve_runs_open_on_loopback_until_a_key_exists(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, lines):
        assert "OPEN" in lines[-1]
        assert "loopback only" in lines[-1]
        with httpx.Client(base_url=url, timeout=10) as http:
            created = http.post("/jobs", json={"customer_id": "acme"})
            assert created.status_code == 201
            job_id = created.json()["job_id"]

            made = ledger(tmp_path, "keys", "create", "--role", "service", "--customer", "acme")
            assert made.returncode == 0, made.stderr
            key = made.stdout.splitlines()[-1]
            assert re.fullmatch(r"jl_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)

            deadline = time.monotonic() + 15  # open mode ends within the key cache's ttl
            while http.get(f"/jobs/{job_id}").status_code != 401:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            auth = {"authorization": f"Bearer {key}"}
            assert http.get(f"/jobs/{job_id}", headers=auth).status_code == 200

            listed = ledger(tmp_path, "keys", "list", "--json")
            (record,) = json.loads(listed.stdout)
            assert (record["role"], record["customer_id"]) == ("service", "acme")
            assert key not in listed.stdout
            revoked = ledger(tmp_path, "keys", "revoke", record["key_id"])
            assert revoked.returncode == 0, revoked.stderr


@pytest.mark.postgres
def test_serve_requires_keys_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    env = {"DATABASE_URL": postgres_url}
    with serving(tmp_path, env) as (url, lines), httpx.Client(base_url=url, timeout=10) as http:
        assert "API keys required" in lines[-1]
        assert "OPEN" not in lines[-1]
        assert http.post("/jobs", json={"customer_id": "acme"}).status_code == 401
        assert http.get("/health").json()["services"]["database"]["status"] == "up"


def test_key_cli_errors_are_one_line(tmp_path: Path) -> None:
    bad_role = ledger(tmp_path, "keys", "create", "--role", "boss")
    assert bad_role.returncode == 2
    assert len(bad_role.stderr.strip().splitlines()) == 1
    unknown = ledger(tmp_path, "keys", "revoke", "000000000000")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "ledger: error: no API key with id '000000000000'"
    assert "Traceback" not in unknown.stderr
