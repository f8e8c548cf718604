"""``ledger keys create | list | revoke``: the HTTP API's keys.

``create`` prints the new key alone on the last line of its output (and only then: the
ledger keeps its hash). Errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.console import make_console
from adapters.cli.errors import user_errors
from adapters.cli.options import names
from adapters.service.bootstrap import build, utc_now
from ledger.access import KeyRecord, KeyStore, Role, new_key

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = make_console()


def _store() -> KeyStore:
    wired = build()  # migrates: the keys table exists afterwards
    try:
        return wired.backend.key_store()
    finally:
        wired.close()


@keys_app.command("create")
@user_errors
def create(
    role: Annotated[Role, typer.Option("--role", help="What the key may do.")],
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only this customer's jobs.", callback=names)
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="A note to recognise the key by.", callback=names)
    ] = None,
) -> None:
    """Create a key; the key itself is printed once, alone on the last line."""
    store = _store()
    key, record = new_key(role, customer, label, utc_now())
    store.add(record)
    scope = f", customer {customer}" if customer else ""
    sys.stdout.write(
        f"created API key {record.key_id} (role {record.role}{scope})\n"
        "it is shown only now; the ledger keeps only its hash:\n"
        f"{key}\n"
    )


@keys_app.command("list")
@user_errors
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every key: id, role, customer, label, when created and revoked (never the key)."""
    records = _store().list()
    rows = [_row(r) for r in records]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} API keys")
    for column in ("key_id", "role", "customer_id", "label", "created_at", "revoked_at"):
        table.add_column(column, no_wrap=column == "key_id")
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    console.print(table)


@keys_app.command("revoke")
@user_errors
def revoke(
    key_id: Annotated[str, typer.Argument(
        help="The key's id (from `ledger keys list`).", callback=names)],
) -> None:
    """Revoke a key: requests with it are refused within seconds."""
    record = _store().revoke(key_id, utc_now())
    assert record.revoked_at is not None
    sys.stdout.write(f"revoked API key {record.key_id} at {record.revoked_at.isoformat()}\n")


def _row(record: KeyRecord) -> dict[str, str | None]:
    return {
        "key_id": record.key_id,
        "role": str(record.role),
        "customer_id": record.customer_id,
        "label": record.label,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }
