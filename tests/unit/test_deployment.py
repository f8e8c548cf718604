"""compose.yaml, the Dockerfile and the ElasticMQ config, checked without a Docker engine.

Every service's command (and health check) that runs ``ledger`` must be a real command
line of the typer app: the subcommand path exists and click parses the arguments. The
environment names must be the configuration's (``adapters.service.settings.Settings``, the
HTTP API's, the worker's) or standard AWS / PostgreSQL ones, and their values must pass the
configuration's own validation. A service whose command is still being built goes in
``PENDING_COMMANDS``: a strict expected failure, so its XPASS fails the suite the day the
command exists.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from adapters.cli.app import app
from adapters.cli.worker import API_KEY_VARIABLE, API_URL_VARIABLE
from adapters.service.settings import Settings
from adapters.worker import load_handler

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ELASTICMQ = ROOT / "deploy" / "elasticmq.conf"

LEDGER_SERVICES = (
    "api", "projections", "dispatcher", "schedules", "monitor-stale", "monitor-dlq", "worker",
)
PENDING_COMMANDS: dict[str, str] = {}
"""Services whose command is still being built, with why: strict expected failures, so the
suite fails the day the command exists until the entry goes (none now)."""

AWS_NAMES = frozenset({
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
})
POSTGRES_NAMES = frozenset({
    "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_INITDB_ARGS", "PGDATA",
})
LEDGER_NAMES = frozenset(f.name.upper() for f in fields(Settings)) | {
    "RATE_LIMIT_WORKER_PER_MINUTE", "RATE_LIMIT_SERVICE_PER_MINUTE",
    "HEALTH_STALE_UNHEALTHY", "HEALTH_MAX_LAG", API_URL_VARIABLE, API_KEY_VARIABLE,
}


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def interpolate(value: object) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME}`` with nothing set: the defaults."""
    return re.sub(
        r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", str(value)
    )


def check_ledger_command(argv: list[str]) -> None:
    """Fail unless ``argv`` is a command line the ``ledger`` app accepts.

    Groups and usage errors are recognised by shape: some typer versions vendor click."""
    assert argv[0] == "ledger", argv
    command: Any = typer.main.get_command(app)
    path = ["ledger"]
    args = [interpolate(a) for a in argv[1:]]
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        name = args.pop(0)
        found = command.commands.get(name)
        assert found is not None, (
            f"`{' '.join(path)} {name}` is not a command "
            f"(there are: {', '.join(sorted(command.commands))})"
        )
        command, path = found, [*path, name]
    assert not hasattr(command, "commands"), f"`{' '.join(path)}` needs a subcommand"
    try:
        command.make_context(" ".join(path), list(args), resilient_parsing=False)
    except Exception as error:
        if not hasattr(error, "format_message"):
            raise
        pytest.fail(f"`{' '.join(argv)}`: {error.format_message()}")


def test_the_compose_file_has_every_part_with_health_checks_and_restart_policies() -> None:
    found = services()
    assert set(found) == {"postgres", "sqs", *LEDGER_SERVICES}
    for name, service in found.items():
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        check = service.get("healthcheck")
        assert check is not None, f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in LEDGER_SERVICES:
        depends = found[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["sqs"]["condition"] == "service_healthy", name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)]
            if (reason := PENDING_COMMANDS.get(name)) else [],
        )
        for name in LEDGER_SERVICES
    ],
)
def test_every_service_runs_a_real_ledger_command(name: str) -> None:
    service = services()[name]
    check_ledger_command(service["command"])
    test = service["healthcheck"]["test"]
    if test[0] == "CMD" and test[1] == "ledger":
        check_ledger_command(test[1:])


def test_the_worker_s_handler_loads_and_it_drains_within_the_stop_grace_period() -> None:
    worker = services()["worker"]
    command: list[str] = worker["command"]
    load_handler(command[command.index("--handler") + 1], search=str(ROOT))
    grace = float(command[command.index("--grace") + 1])
    stop = worker["stop_grace_period"]
    assert stop.endswith("s")
    assert float(stop[:-1]) > grace
    health_file = command[command.index("--health-file") + 1]
    assert health_file in " ".join(worker["healthcheck"]["test"])


@pytest.mark.parametrize("name", LEDGER_SERVICES)
def test_environment_names_are_the_configuration_s_and_their_values_valid(name: str) -> None:
    environment = {k: interpolate(v) for k, v in services()[name]["environment"].items()}
    unknown = set(environment) - LEDGER_NAMES - AWS_NAMES
    assert not unknown, f"{name}: unknown variables {sorted(unknown)}"
    settings = Settings.from_env(environment)  # raises ConfigurationError naming a bad one
    assert settings.database_url is not None
    assert settings.sqs_queue_url is not None
    assert settings.sqs_dlq_url is not None


def test_postgres_and_the_queue_service_use_known_names() -> None:
    found = services()
    assert set(found["postgres"]["environment"]) <= POSTGRES_NAMES
    assert not found["sqs"].get("environment")
    user = found["postgres"]["environment"]["POSTGRES_USER"]
    password = found["postgres"]["environment"]["POSTGRES_PASSWORD"]
    database = found["postgres"]["environment"]["POSTGRES_DB"]
    url = found["api"]["environment"]["DATABASE_URL"]
    assert url == f"postgresql://{user}:{password}@postgres:5432/{database}"


def test_the_elasticmq_config_creates_the_queue_and_its_dead_letter_queue() -> None:
    text = ELASTICMQ.read_text()
    environment = services()["api"]["environment"]
    queue = environment["SQS_QUEUE_URL"].rsplit("/", 1)[1]
    dlq = environment["SQS_DLQ_URL"].rsplit("/", 1)[1]
    assert re.search(rf"^\s*{re.escape(queue)}\s*{{", text, re.M)
    assert re.search(rf"^\s*{re.escape(dlq)}\s*{{", text, re.M)
    assert re.search(
        rf'deadLettersQueue\s*{{\s*name\s*=\s*"{re.escape(dlq)}"\s*maxReceiveCount\s*=\s*\d+',
        text,
    )
    mount = services()["sqs"]["volumes"][0]
    assert mount.split(":")[0] == "./deploy/elasticmq.conf"
    assert mount.split(":")[1] == "/opt/elasticmq.conf"


def test_the_dockerfile_is_slim_installs_the_project_and_runs_as_a_user() -> None:
    lines = [
        line.strip() for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    froms = [line for line in lines if line.upper().startswith("FROM ")]
    assert froms[-1].split()[1] == "python:3.11-slim"
    last_stage = lines[lines.index(froms[-1]):]
    users = [line.split()[1] for line in last_stage if line.upper().startswith("USER ")]
    assert users, "no USER: the image would run as root"
    assert users[-1] not in ("root", "0", "0:0")
    assert any("pip install ." in line for line in last_stage)
    copied = " ".join(line for line in last_stage if line.upper().startswith("COPY "))
    for needed in ("pyproject.toml", "ledger", "projections", "adapters", "examples"):
        assert needed in copied, needed
