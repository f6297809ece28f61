"""`integrator accounts list|show`: what the portal sees."""

from __future__ import annotations

import json
import sys

import click

from integrator.cli.app import config_option, group_config_option, handle_errors, main, not_found
from integrator.cli.output import print_json, print_table, to_jsonable
from integrator.config import Config
from integrator.store.db import open_store
from integrator.store.queries import account_events_of, find_account, iter_accounts

__all__ = ["accounts_group"]


@main.group("accounts")
@group_config_option
def accounts_group() -> None:
    """List and inspect B2B accounts."""


@accounts_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["live", "pending_activation", "active", "removed"]),
    help="Only accounts in this status (`live`: not removed).",
)
@click.option("--erp-id", help="Only the accounts (identities) of this ERP customer.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@config_option
@handle_errors
def list_command(config: Config, status: str | None, erp_id: str | None, as_json: bool) -> None:
    """Every account (removed ones too, unless --status says otherwise)."""
    engine = open_store(config.store.url)
    with engine.connect() as conn:
        rows = iter_accounts(conn, status=status, erp_id=erp_id)
        if as_json:
            # Streamed element by element: a million accounts must not be built into one list first.
            out = sys.stdout
            out.write("[")
            for index, row in enumerate(rows):
                out.write(("," if index else "") + "\n  " + json.dumps(to_jsonable(row), ensure_ascii=False))
            out.write("\n]\n")
            return
        print_table(
            None,
            ["id", "erp_id", "login", "status", "blocked", "name", "created"],
            ([r["id"], r["erp_id"], r["login"], r["status"], "yes" if r["blocked"] else "", r["name"],
              r["created_at"]] for r in rows),
        )  # fmt: skip


@accounts_group.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@handle_errors
def show_command(config: Config, key: str, as_json: bool) -> None:
    """One account by login, identity id or ERP id, with its history."""
    engine = open_store(config.store.url)
    with engine.connect() as conn:
        account = find_account(conn, key)
        if account is None:
            rows = list(iter_accounts(conn, erp_id=key.strip()))
            account = rows[-1] if rows else None
        if account is None:
            not_found("account", "login, id or ERP id", key)
        events = account_events_of(conn, account_id=account["id"])
    if as_json:
        print_json({**account, "events": events})
        return
    print_table(f"Account {account['id']}", ["field", "value"], [[k, v] for k, v in account.items()])
    print_table("History", ["at", "kind", "actor", "run", "changes"],
                [[e["at"], e["kind"], e["actor"], e["run_id"], e["changes"]] for e in events])  # fmt: skip
