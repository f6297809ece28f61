"""A store seeded the way the sync leaves it (accounts + outbox rows), and a config for mail tests."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.config import Config, config_from_dict
from integrator.mail.delivery import RetrySettings
from integrator.store.schema import account_events, account_secrets, accounts, outbox

FAST_RETRY = RetrySettings(attempts=2, wait_initial=0.01, wait_max=0.02)


def mail_config(tmp: Path, store_url: str, *, accounts_: dict[str, Any] | None = None, **mail: Any) -> Config:
    """A config whose mail goes where the test says (default: SMTP on localhost without TLS)."""
    data: dict[str, Any] = {
        "source": {"kind": "csv", "path": "erp.csv"},
        "store": {"url": store_url},
        "accounts": {"portal_url": "https://b2b.hurtownia.example.pl", **(accounts_ or {})},
        "mail": {
            "backend": "smtp",
            "sender": "Hurtownia Łódź B2B <no-reply@hurtownia.example.pl>",
            "reply_to": "Biuro Obsługi <biuro@hurtownia.example.pl>",
            **mail,
        },
    }
    return config_from_dict(data, tmp / "config.toml")


def smtp_settings(port: int, **extra: Any) -> dict[str, Any]:
    """`[mail.smtp]` for the test server."""
    return {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5, **extra}


def seed_account(
    engine: Engine,
    login: str,
    *,
    name: str | None = "Hurtownia Żółć Sp. z o.o.",
    status: str = "pending_activation",
    locale: str | None = "pl",
    blocked: bool = False,
    blocked_reason: str | None = None,
    sales_rep: str | None = "Łukasz Wąsowski",
    sales_rep_email: str | None = "l.wasowski@hurtownia.example.pl",
    erp_id: str | None = None,
    password_hash: str | None = None,
) -> str:
    """Insert one account as the sync would; returns its id."""
    account_id = str(uuid.uuid4())
    erp_id = erp_id or str(uuid.uuid4().int % 10**8)
    now = utcnow()
    live = status != "removed"
    with engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                id=account_id, erp_id=erp_id, login=login, live_login=login if live else None,
                live_erp_id=erp_id if live else None, live_key=erp_id if live else None, status=status,
                blocked=blocked, blocked_reason=blocked_reason,
                name=name, sales_rep=sales_rep, sales_rep_email=sales_rep_email, locale=locale, fingerprint="f" * 16,
                password_hash=password_hash, must_change_password=False, created_at=now, updated_at=now,
                activated_at=now if status == "active" else None, removed_at=None if live else now,
            )
        )  # fmt: skip
    return account_id


def queue(
    engine: Engine,
    account_id: str,
    kind: str = "activation",
    *,
    recipient: str | None = None,
    locale: str | None = None,
    context: dict[str, Any] | None = None,
) -> int:
    """Insert one pending outbox row as the sync would; returns its id."""
    with engine.begin() as conn:
        if recipient is None:
            recipient = conn.execute(sa.select(accounts.c.login).where(accounts.c.id == account_id)).scalar_one()
        result = conn.execute(
            outbox.insert().values(
                account_id=account_id, kind=kind, recipient=recipient, locale=locale, status="pending", attempts=0,
                created_at=utcnow(), run_id=1, actor="sync", context=json.dumps(context) if context else None,
            )
        )  # fmt: skip
    return int(result.inserted_primary_key[0])


def mail_row(engine: Engine, mail_id: int) -> dict[str, Any]:
    """The outbox row."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(outbox).where(outbox.c.id == mail_id)).mappings().one())


def account_row(engine: Engine, account_id: str) -> dict[str, Any]:
    """The account row."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).mappings().one())


def rows(engine: Engine, table: sa.Table) -> list[dict[str, Any]]:
    """Every row of a table."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def events(engine: Engine, account_id: str) -> list[dict[str, Any]]:
    """The account's history."""
    with engine.connect() as conn:
        query = sa.select(account_events).where(account_events.c.account_id == account_id).order_by(account_events.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def expire_secrets(engine: Engine, account_id: str) -> None:
    """Move every secret of the account past its expiry, as if 48 hours had gone by."""
    with engine.begin() as conn:
        conn.execute(
            account_secrets.update()
            .where(account_secrets.c.account_id == account_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


_TOKEN = re.compile(r"token=([A-Za-z0-9._~%-]+)")
_PASSWORD = re.compile(r"(?:Hasło tymczasowe|Temporary password): (\S+)")


def token_in(text: str) -> str:
    """The link token a mail's text carries."""
    match = _TOKEN.search(text)
    assert match, text
    return unquote(match.group(1))


def password_in(text: str) -> str:
    """The temporary password a mail's text carries."""
    match = _PASSWORD.search(text)
    assert match, text
    return match.group(1)
