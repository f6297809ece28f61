"""Read-side queries shared by the CLI commands (accounts, explain, history, report).

An account is per customer (`contact_id` None) or, with a contacts source, per contact person of a customer
(`integrator.identity`). Every account dict has the stored `attributes` parsed into a dict (`{}` when none).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from integrator.identity import normalize_username
from integrator.records import normalize_login
from integrator.store.schema import account_events, accounts, run_actions

__all__ = [
    "ACCOUNT_FIELDS",
    "account_events_of",
    "actions_of_run",
    "contact_label",
    "customer_accounts",
    "find_account",
    "has_contact_accounts",
    "iter_accounts",
]

ACCOUNT_FIELDS = (
    "id", "erp_id", "contact_id", "login", "email", "status", "blocked", "blocked_reason", "name", "contact_name",
    "symbol", "tax_id", "phone", "price_level", "discount", "sales_rep", "sales_rep_email", "locale", "attributes",
    "must_change_password", "created_at", "updated_at", "activated_at", "last_login_at", "removed_at",
    "removed_reason",
)  # fmt: skip
"""What the CLI shows of an account (`accounts list --json` items): extend it, never rename (SPEC "Pinned
contract"). `contact_id` is None for a per-customer account; `email` is where mail goes when the login is a
username (None: the login is the e-mail); `attributes` is a dict."""

_COLUMNS = tuple(accounts.c[f] for f in ACCOUNT_FIELDS)


def _account(row: sa.RowMapping) -> dict[str, Any]:
    item = dict(row)
    item["blocked"] = bool(item["blocked"])
    item["must_change_password"] = bool(item["must_change_password"])
    item["attributes"] = json.loads(item["attributes"]) if item["attributes"] else {}
    return item


def iter_accounts(
    conn: sa.Connection, *, status: str | None = None, erp_id: str | None = None
) -> Iterator[dict[str, Any]]:
    """Accounts in creation order, streamed."""
    query = _filtered(sa.select(*_COLUMNS), status, erp_id).order_by(accounts.c.created_at, accounts.c.id)
    for row in conn.execute(query, execution_options={"yield_per": 5000}).mappings():
        yield _account(row)


def has_contact_accounts(conn: sa.Connection, *, status: str | None = None, erp_id: str | None = None) -> bool:
    """Whether any account `iter_accounts` would list with these filters is a contact's (tables then show a
    contact column)."""
    query = _filtered(sa.select(accounts.c.id), status, erp_id).where(accounts.c.contact_id.is_not(None)).limit(1)
    return conn.execute(query).first() is not None


def _filtered(query: sa.Select[Any], status: str | None, erp_id: str | None) -> sa.Select[Any]:
    if status == "live":
        query = query.where(accounts.c.status != "removed")
    elif status:
        query = query.where(accounts.c.status == status)
    if erp_id:
        query = query.where(accounts.c.erp_id == erp_id)
    return query


def contact_label(item: Mapping[str, Any]) -> str:
    """How a table names the contact an account or action is for: `id (name)`, or empty for a customer's own."""
    contact_id, name = item.get("contact_id"), item.get("contact_name")
    if contact_id is None:
        return ""
    return f"{contact_id} ({name})" if name else str(contact_id)


def find_account(conn: sa.Connection, key: str) -> dict[str, Any] | None:
    """The one account a person means by `key`: a live login (an e-mail or a username, in its normal form), an
    identity id, or an ERP id's live account. A customer with several live accounts (one per contact person)
    has no one account: None, and `customer_accounts` lists them."""
    stripped = key.strip()
    logins = dict.fromkeys((normalize_login(key), normalize_username(key)))  # e-mail first; the same when plain
    for condition in (*(accounts.c.live_login == login for login in logins), accounts.c.id == stripped):
        row = conn.execute(sa.select(*_COLUMNS).where(condition)).mappings().first()
        if row:
            return _account(row)
    live = customer_accounts(conn, stripped, live_only=True)
    return live[0] if len(live) == 1 else None


def customer_accounts(conn: sa.Connection, erp_id: str, *, live_only: bool = False) -> list[dict[str, Any]]:
    """The accounts (identities) of one ERP customer, its contacts' included, by contact then age."""
    query = sa.select(*_COLUMNS).where(accounts.c.live_erp_id == erp_id if live_only else accounts.c.erp_id == erp_id)
    rows = [_account(row) for row in conn.execute(query).mappings()]
    rows.sort(key=lambda a: (a["contact_id"] is not None, a["contact_id"] or "", a["created_at"], a["id"]))
    return rows


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
    """Every action of a run: the account changes it made (its events) and what it left out or refused, each
    with the `contact_id` it concerns (None for a per-customer account or a customer's own row)."""
    kinds = [k for k, a in _EVENT_ACTIONS.items() if action in (None, a)]
    if kinds:
        query = (
            sa.select(
                account_events.c.erp_id,
                accounts.c.contact_id,
                account_events.c.account_id,
                account_events.c.kind,
                account_events.c.changes,
            )
            .select_from(account_events.outerjoin(accounts, accounts.c.id == account_events.c.account_id))
            .where(account_events.c.run_id == run_id, account_events.c.kind.in_(kinds))
            .order_by(account_events.c.id)
        )
        for row in conn.execute(query, execution_options={"yield_per": 5000}):
            yield {
                "erp_id": row.erp_id,
                "contact_id": row.contact_id,
                "account_id": row.account_id,
                "action": _EVENT_ACTIONS[row.kind],
                "reason": _event_reason(row.kind, row.changes),
            }
    query = sa.select(run_actions).where(run_actions.c.run_id == run_id).order_by(run_actions.c.id)
    if action:
        query = query.where(run_actions.c.action == action)
    for row in conn.execute(query).mappings():
        yield {k: row[k] for k in ("erp_id", "contact_id", "account_id", "action", "reason")}
