"""Reading accounts for the API: by id, by login (an e-mail or a username, in its normal form)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.api.models import Account, account_from_row
from integrator.identity import normalize_username
from integrator.records import normalize_login
from integrator.store.queries import ACCOUNT_FIELDS
from integrator.store.schema import accounts

__all__ = ["account_by_id", "live_account_by_login"]

_COLUMNS = tuple(accounts.c[f] for f in ACCOUNT_FIELDS)


def _one(engine: Engine, condition: Any) -> Account | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(*_COLUMNS).where(condition)).first()
    return account_from_row(row) if row else None


def account_by_id(engine: Engine, account_id: str) -> Account | None:
    """The account (live or removed) with this identity id."""
    return _one(engine, accounts.c.id == account_id)


def live_account_by_login(engine: Engine, login: str) -> Account | None:
    """The live account holding this login: an e-mail's normal form first, then a username's."""
    for candidate in dict.fromkeys((normalize_login(login), normalize_username(login))):
        if candidate:
            found = _one(engine, accounts.c.live_login == candidate)
            if found:
                return found
    return None
