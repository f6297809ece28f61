"""Impersonation ("login as customer", made auditable): a staff member names themselves and a reason and gets a
one-time ticket, valid `TICKET_SECONDS`, that the portal redeems to open a session as the customer. Refused for
blocked and removed accounts (when asked and when redeemed). The ticket's start and its use are account events
naming the staff member and the reason; only the ticket's SHA-256 is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.mail import secrets
from integrator.portal import record_event
from integrator.store.schema import accounts, impersonations

__all__ = ["TICKET_SECONDS", "Redeemed", "TicketRefused", "Ticket", "redeem", "start"]

TICKET_SECONDS = 60


class TicketRefused(Exception):
    """The request or the ticket does not fit: `code` is the API's error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Ticket:
    ticket: str
    expires_at: datetime

    def __repr__(self) -> str:  # keeps the ticket out of tracebacks and logs
        return f"Ticket(expires_at={self.expires_at!r})"


@dataclass(frozen=True)
class Redeemed:
    account_id: str
    actor: str
    reason: str


def _refusal(account: Any) -> str | None:
    if account is None or account.status == "removed":
        return "account_removed"
    if account.blocked:
        return "blocked"
    return None


def start(engine: Engine, account_id: str, actor: str, reason: str) -> Ticket:
    """A one-time ticket to log in as the account; raises `TicketRefused` for a blocked or removed account."""
    now = utcnow()
    random_part = secrets.mint_token()
    with engine.begin() as conn:
        account = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).first()
        refusal = _refusal(account)
        if refusal:
            raise TicketRefused(refusal)
        expires_at = now + timedelta(seconds=TICKET_SECONDS)
        made = conn.execute(
            impersonations.insert().values(
                account_id=account_id,
                ticket_hash=secrets.hash_token(random_part),
                actor=actor,
                reason=reason,
                created_at=now,
                expires_at=expires_at,
            )
        )
        ticket_id = int(made.inserted_primary_key[0])
        record_event(conn, account, "impersonation_started", actor, now, reason=reason, impersonation_id=ticket_id)
    return Ticket(f"{ticket_id}.{random_part}", expires_at)


def redeem(engine: Engine, ticket: str) -> Redeemed:
    """Use a ticket (once, before it expires, while the account is live and unblocked)."""
    parsed = secrets.parse_token(ticket)
    if parsed is None:
        raise TicketRefused("invalid_ticket")
    ticket_id, random_part = parsed
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(sa.select(impersonations).where(impersonations.c.id == ticket_id)).first()
        if row is None or not secrets.token_matches(row.ticket_hash, random_part) or row.used_at is not None:
            raise TicketRefused("invalid_ticket")
        if row.expires_at <= now:
            raise TicketRefused("expired")
        claimed = conn.execute(
            impersonations.update()
            .where(impersonations.c.id == ticket_id, impersonations.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if claimed != 1:
            raise TicketRefused("invalid_ticket")
        account = conn.execute(sa.select(accounts).where(accounts.c.id == row.account_id)).first()
        refusal = _refusal(account)
        if refusal:
            raise TicketRefused(refusal)
        record_event(
            conn, account, "impersonation_login", row.actor, now, reason=row.reason, impersonation_id=ticket_id
        )
    return Redeemed(row.account_id, row.actor, row.reason)
