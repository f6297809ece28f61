"""The store's schema: migrations build exactly what the code expects, on every backend, and the database
itself keeps one live account per login and per customer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from integrator.clock import utcnow
from integrator.store.db import open_store
from integrator.store.schema import accounts, metadata


def test_migrations_match_the_table_definitions(store_url: str) -> None:
    """After `open_store` migrates, Alembic finds no difference between the database and schema.py."""
    engine = open_store(store_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if "alembic_version" not in str(d)]
    engine.dispose()
    assert differences == []


def test_open_store_is_idempotent(store_url: str) -> None:
    """Opening an up-to-date store again migrates nothing and loses nothing."""
    engine = open_store(store_url)
    now = utcnow()
    row = {"id": "a", "erp_id": "1", "login": "x@example.pl", "live_login": "x@example.pl", "live_erp_id": "1",
           "status": "active", "blocked": False, "must_change_password": False, "fingerprint": "0" * 16,
           "created_at": now, "updated_at": now}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(accounts.insert().values(**row))
    engine.dispose()
    again = open_store(store_url)
    with again.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar() == 1
    again.dispose()


def test_database_refuses_two_live_accounts_for_one_login_or_customer(store_url: str) -> None:
    """The unique live_login and live_erp_id indexes hold even if the sync's own logic were wrong."""
    engine = open_store(store_url)
    now = utcnow()

    def account(account_id: str, erp_id: str, login: str, live: bool = True) -> dict[str, object]:
        return {"id": account_id, "erp_id": erp_id, "login": login, "live_login": login if live else None,
                "live_erp_id": erp_id if live else None, "status": "active" if live else "removed",
                "blocked": False, "must_change_password": False, "fingerprint": "0" * 16,
                "created_at": now, "updated_at": now}  # fmt: skip

    with engine.begin() as conn:
        conn.execute(accounts.insert(), [account("a", "1", "x@example.pl"), account("b", "1", "x@example.pl", False)])
    for clash in (account("c", "2", "x@example.pl"), account("d", "1", "y@example.pl")):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(accounts.insert().values(**clash))
    engine.dispose()
