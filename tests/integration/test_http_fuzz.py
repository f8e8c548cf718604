"""Schema-driven fuzzing: schemathesis generates valid and invalid requests for every
operation of ``/schema/openapi.json`` and checks that none answers 5xx and that every
response matches the document (status, content type, body schema)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from adapters.bootstrap import build
from adapters.http.ratelimit import Preset
from adapters.http.wiring import build_api
from ledger.config import Settings
from tests.support.http import serve_in_thread

CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
))


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    tmp_path: Path,
) -> None:
    container = build(Settings(ledger_data_dir=tmp_path / "data"))
    api = build_api(container)
    for name in ("public", "staff", "admin"):  # let the fuzzer reach the handlers
        api.limiter.presets[name] = Preset(name, 100_000, 60)
    try:
        with serve_in_thread(api) as running:
            with httpx.Client(base_url=running.base_url) as http:  # a job for the fuzzer to find
                http.post("/jobs", json={"customer_id": "acme"}).raise_for_status()
            result = subprocess.run(
                [
                    sys.executable, "-m", "schemathesis.cli", "run",
                    f"{running.base_url}/schema/openapi.json",
                    "--checks", CHECKS, "--max-examples", "20", "--seed", "20261128",
                    "--workers", "2", "--generation-database", "none", "--no-color",
                    "--request-timeout", "10",
                ],
                cwd=tmp_path, capture_output=True, text=True, timeout=150, check=False,
            )
    finally:
        container.close()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output
    assert "failed" not in output.split("SUMMARY")[-1], output[-6000:]
