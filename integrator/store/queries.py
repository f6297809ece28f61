"""Read-side queries shared by the CLI commands (accounts, explain, history, report)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from integrator.records import normalize_login
from integrator.store.schema import account_events, accounts, run_actions

__all__ = ["ACCOUNT_FIELDS", "account_events_of", "actions_of_run", "find_account", "iter_accounts"]

ACCOUNT_FIELDS = (
    "id", "erp_id", "login", "status", "blocked", "blocked_reason", "name", "symbol", "tax_id", "phone",
    "price_level", "discount", "sales_rep", "sales_rep_email", "locale", "must_change_password",
    "created_at", "updated_at", "activated_at", "last_login_at", "removed_at", "removed_reason",
)  # fmt: skip


def iter_accounts(
    conn: sa.Connection, *, status: str | None = None, erp_id: str | None = None
) -> Iterator[dict[str, Any]]:
    """Accounts in creation order, streamed."""
    query = sa.select(*(accounts.c[f] for f in ACCOUNT_FIELDS)).order_by(accounts.c.created_at, accounts.c.id)
    if status == "live":
        query = query.where(accounts.c.status != "removed")
    elif status:
        query = query.where(accounts.c.status == status)
    if erp_id:
        query = query.where(accounts.c.erp_id == erp_id)
    for row in conn.execute(query, execution_options={"yield_per": 5000}).mappings():
        item = dict(row)
        item["blocked"] = bool(item["blocked"])
        item["must_change_password"] = bool(item["must_change_password"])
        yield item


def find_account(conn: sa.Connection, key: str) -> dict[str, Any] | None:
    """The account a person means by `key`: a live login, an identity id, or an ERP id's live account."""
    columns = [accounts.c[f] for f in ACCOUNT_FIELDS]
    for condition in (
        accounts.c.live_login == normalize_login(key),
        accounts.c.id == key.strip(),
        accounts.c.live_erp_id == key.strip(),
    ):
        row = conn.execute(sa.select(*columns).where(condition)).mappings().first()
        if row:
            item = dict(row)
            item["blocked"] = bool(item["blocked"])
            item["must_change_password"] = bool(item["must_change_password"])
            return item
    return None


def account_events_of(
    conn: sa.Connection, *, account_id: str | None = None, erp_id: str | None = None
) -> list[dict[str, Any]]:
    """The history of one identity, or of every identity a customer ever had."""
    query = sa.select(account_events).order_by(account_events.c.at, account_events.c.id)
    query = (
        query.where(account_events.c.account_id == account_id)
        if account_id
        else query.where(account_events.c.erp_id == erp_id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


_EVENT_ACTIONS = {
    "created": "create",
    "readded": "readd",
    "restored": "restore",
    "updated": "update",
    "removed": "remove",
}


def _event_reason(kind: str, changes: str | None) -> str:
    detail = json.loads(changes) if changes else {}
    if kind == "created":
        return "eligible, no account yet"
    if kind == "readded":
        return "eligible again after removal: new identity"
    if kind == "restored":
        return "eligible again after removal: closed identity reopened"
    if kind == "removed":
        return ", ".join(detail.get("reasons", []))
    return "changed: " + ", ".join(f"{field} {old!r} -> {new!r}" for field, (old, new) in detail.items())


def actions_of_run(conn: sa.Connection, run_id: int, action: str | None = None) -> Iterator[dict[str, Any]]:
    """Every action of a run: the account changes it made (its events) and what it left out or refused."""
    kinds = [k for k, a in _EVENT_ACTIONS.items() if action in (None, a)]
    if kinds:
        query = (
            sa.select(
                account_events.c.erp_id, account_events.c.account_id, account_events.c.kind, account_events.c.changes
            )
            .where(account_events.c.run_id == run_id, account_events.c.kind.in_(kinds))
            .order_by(account_events.c.id)
        )
        for row in conn.execute(query, execution_options={"yield_per": 5000}):
            yield {
                "erp_id": row.erp_id,
                "account_id": row.account_id,
                "action": _EVENT_ACTIONS[row.kind],
                "reason": _event_reason(row.kind, row.changes),
            }
    query = sa.select(run_actions).where(run_actions.c.run_id == run_id).order_by(run_actions.c.id)
    if action:
        query = query.where(run_actions.c.action == action)
    for row in conn.execute(query).mappings():
        yield {k: row[k] for k in ("erp_id", "account_id", "action", "reason")}
