"""`integrator accounts list|show`: what the portal sees.

With a contacts source an ERP customer has one account per contact person: the tables gain a contact column
(when any account listed has a contact), and `accounts show ERP_ID` of a customer with several accounts lists
them instead of picking one.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from integrator.cli.app import config_option, group_config_option, handle_errors, main, not_found
from integrator.cli.output import print_json, print_table, say, to_jsonable

if TYPE_CHECKING:
    from integrator.config import Config

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
    from integrator.store.db import open_store
    from integrator.store.queries import contact_label, has_contact_accounts, iter_accounts

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
        contacts = has_contact_accounts(conn, status=status, erp_id=erp_id)
        columns = ["id", "erp_id", *(["contact"] if contacts else []), "login", "status", "blocked", "name", "created"]
        print_table(
            None,
            columns,
            ([r["id"], r["erp_id"], *([contact_label(r)] if contacts else []), r["login"], r["status"],
              "yes" if r["blocked"] else "", r["name"], r["created_at"]] for r in rows),
        )  # fmt: skip


@accounts_group.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@handle_errors
def show_command(config: Config, key: str, as_json: bool) -> None:
    """One account by login, identity id or ERP id, with its history (a customer with several accounts, one per
    contact person: all of them; show one by its login or id)."""
    from integrator.store.db import open_store
    from integrator.store.queries import account_events_of, customer_accounts, find_account

    engine = open_store(config.store.url)
    with engine.connect() as conn:
        account = find_account(conn, key)
        several: list[dict[str, Any]] = []
        if account is None:
            rows = customer_accounts(conn, key.strip(), live_only=True) or customer_accounts(conn, key.strip())
            if len({r["contact_id"] for r in rows}) > 1:
                several = rows
            elif rows:  # one identity's lineage (re-adds of one customer or contact): its newest
                account = max(rows, key=lambda r: (r["created_at"], r["id"]))
        if account is None and not several:
            not_found("account", "login, id or ERP id", key)
        for item in several or [account]:
            item["events"] = account_events_of(conn, account_id=item["id"])
    if several:
        _show_several(key.strip(), several, as_json)
    elif as_json:
        print_json(account)
    else:
        _show_one(account)


def _show_one(account: dict[str, Any]) -> None:
    fields = [[k, v] for k, v in account.items() if k not in ("attributes", "events")]
    attributes = account["attributes"]
    fields += [[f"attributes.{name}", _attribute(value)] for name, value in attributes.items()] or [["attributes", ""]]
    print_table(f"Account {account['id']}", ["field", "value"], fields)
    print_table("History", ["at", "kind", "actor", "run", "changes"],
                [[e["at"], e["kind"], e["actor"], e["run_id"], e["changes"]] for e in account["events"]])  # fmt: skip


def _attribute(value: Any) -> str:
    """An attribute's value as stored (a JSON scalar, list or object): text as is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _show_several(erp_id: str, rows: list[dict[str, Any]], as_json: bool) -> None:
    from integrator.store.queries import contact_label

    if as_json:
        print_json({"erp_id": erp_id, "accounts": rows})
        return
    print_table(
        f"ERP customer {erp_id}: {len(rows)} accounts, one per contact person",
        ["id", "contact", "login", "status", "blocked", "created"],
        ([r["id"], contact_label(r), r["login"], r["status"], "yes" if r["blocked"] else "", r["created_at"]]
         for r in rows),
    )  # fmt: skip
    say("show one with `integrator accounts show LOGIN` (or its id)")
