"""The one CLI error mapper: a named error is one line on stderr and exit status 1."""

from __future__ import annotations

import pytest
import typer

from adapters.cli.errors import FAILED, reported, user_errors
from ledger.errors import JobNotFound, LedgerError, StoreUnavailable


@user_errors
def failing(error: Exception) -> None:
    raise error


@pytest.mark.parametrize(
    "error",
    [
        JobNotFound("no job with id 42"),
        StoreUnavailable("PostgreSQL: connection refused\n\tIs the server running?"),
    ],
)
def test_a_ledger_error_is_one_line_and_a_failed_exit(
    capsys: pytest.CaptureFixture[str], error: LedgerError
) -> None:
    with pytest.raises(typer.Exit) as exited:
        failing(error)
    assert exited.value.exit_code == FAILED != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n")
    assert err.count("\n") == 1
    assert err.startswith("ledger: error: ")
    assert " ".join(str(error).split()) in err


def test_entry_points_name_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit), reported("ledger worker"):
        raise StoreUnavailable()
    assert capsys.readouterr().err == (
        "ledger worker: error: The database could not be reached; try again shortly.\n"
    )


def test_other_errors_are_not_hidden() -> None:
    with pytest.raises(ZeroDivisionError):
        failing(ZeroDivisionError())
