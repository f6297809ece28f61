"""Account actions taken by people (ops, a sales rep), each recorded as an event with its actor."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.errors import IntegratorError
from integrator.records import normalize_login
from integrator.store.schema import account_events, accounts

__all__ = ["AccountNotFound", "block", "unblock"]


class AccountNotFound(IntegratorError, LookupError):
    """No live account has that login."""

    def __init__(self, login: str) -> None:
        super().__init__(f"no live account with login {login!r}")


def _live_account(conn: sa.Connection, login: str) -> sa.Row:
    row = conn.execute(
        sa.select(accounts.c.id, accounts.c.erp_id, accounts.c.blocked, accounts.c.blocked_reason).where(
            accounts.c.live_login == normalize_login(login)
        )
    ).first()
    if row is None:
        raise AccountNotFound(login)
    return row


def _set_blocked(engine: Engine, login: str, blocked: bool, reason: str | None, actor: str) -> bool:
    with engine.begin() as conn:
        account = _live_account(conn, login)
        if bool(account.blocked) == blocked and (not blocked or account.blocked_reason == reason):
            return False
        now = utcnow()
        conn.execute(
            accounts.update()
            .where(accounts.c.id == account.id)
            .values(blocked=blocked, blocked_reason=reason if blocked else None, updated_at=now)
        )
        conn.execute(
            account_events.insert().values(
                account_id=account.id,
                erp_id=account.erp_id,
                actor=actor,
                kind="blocked" if blocked else "unblocked",
                changes=json.dumps(
                    {"reason": reason} if blocked else {"was": account.blocked_reason}, ensure_ascii=False
                ),
                at=now,
            )
        )
    return True


def block(engine: Engine, login: str, reason: str, actor: str) -> bool:
    """Block a live account: it cannot log in and the portal shows `reason`. Syncs never unblock it."""
    if not reason.strip():
        raise IntegratorError("a block needs a reason (the portal shows it to the customer)")
    return _set_blocked(engine, login, True, reason.strip(), actor)


def unblock(engine: Engine, login: str, actor: str) -> bool:
    """Lift a block; returns False when the account was not blocked."""
    return _set_blocked(engine, login, False, None, actor)
