"""The outbox seen from mail's side: queueing (for portal and ops actions), listing and retrying.

Statuses: `pending` (to be sent; `next_attempt_at` NULL means due now), `sent` (final: never sent again),
`failed` (the server refused it, or `max_attempts` ran out: reported, `retry` makes it pending again) and
`cancelled` (deliberately not sent, the reason in `last_error`: the account was removed, the login changed
since it was queued, the account is already activated, or a newer mail of the same kind supersedes it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.errors import IntegratorError
from integrator.store.schema import outbox

__all__ = [
    "CREDENTIAL_KINDS",
    "MAIL_STATUSES",
    "MailInfo",
    "MailNotRetryable",
    "count_pending",
    "list_mail",
    "queue_mail",
    "retry_mail",
]

MAIL_STATUSES = ("pending", "sent", "failed", "cancelled")
CREDENTIAL_KINDS = frozenset({"activation", "password_reset"})


class MailNotRetryable(IntegratorError, LookupError):
    """`mail retry` named a mail that does not exist or is not failed."""


@dataclass(frozen=True)
class MailInfo:
    """One outbox row, as `mail list` shows it."""

    id: int
    kind: str
    account_id: str
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    actor: str | None


def queue_mail(
    conn: sa.Connection,
    *,
    account_id: str,
    kind: str,
    recipient: str,
    locale: str | None,
    actor: str,
    context: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Add a pending mail in the caller's transaction (no secrets in `context`); returns its id."""
    result = conn.execute(
        outbox.insert().values(
            account_id=account_id,
            kind=kind,
            recipient=recipient,
            locale=locale,
            status="pending",
            attempts=0,
            created_at=now or utcnow(),
            actor=actor,
            context=json.dumps(dict(context), ensure_ascii=False) if context else None,
        )
    )
    return int(result.inserted_primary_key[0])


def _info(row: Any) -> MailInfo:
    return MailInfo(
        id=row.id,
        kind=row.kind,
        account_id=row.account_id,
        recipient=row.recipient,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        actor=row.actor,
    )


def list_mail(engine: Engine, *, statuses: tuple[str, ...] | None = None, limit: int | None = None) -> list[MailInfo]:
    """Outbox rows with one of `statuses` (default: everything not yet sent), oldest first."""
    wanted = statuses or ("pending", "failed", "cancelled")
    query = sa.select(outbox).where(outbox.c.status.in_(wanted)).order_by(outbox.c.id)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [_info(row) for row in conn.execute(query)]


def count_pending(engine: Engine) -> int:
    """Mails still waiting to go out (due now or deferred)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(outbox.c.status == "pending")).scalar_one())


def retry_mail(engine: Engine, mail_id: int) -> MailInfo:
    """Make a failed mail pending again with a fresh attempt count; a sent mail is never sent again."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(outbox).where(outbox.c.id == mail_id)).first()
        if row is None:
            raise MailNotRetryable(f"no mail #{mail_id} in the outbox")
        if row.status != "failed":
            hint = (
                " (a sent mail is never sent again: use resend-activation or reset-password)"
                if (row.status == "sent")
                else ""
            )
            raise MailNotRetryable(f"mail #{mail_id} is {row.status}, only failed mails can be retried{hint}")
        conn.execute(
            outbox.update()
            .where(outbox.c.id == mail_id, outbox.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=None)
        )
        row = conn.execute(sa.select(outbox).where(outbox.c.id == mail_id)).one()
    return _info(row)
