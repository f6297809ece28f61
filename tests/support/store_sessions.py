"""A store's sessions ended from outside (what a failover, a server restart or an idle-session killer does), at a
chosen point of the product's work: one of its `checkpoint`s (`integrator/faults.py`), or a call of any function.
Only on the servers (PostgreSQL, MariaDB), where a session can be ended by another one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from integrator.store.db import open_store
from support.erp import SqliteErp

__all__ = ["add_customers", "before_call", "end_sessions", "hook"]


def end_sessions(store_url: str) -> Callable[[], None]:
    """Ends every other session of the store's database, as a failover or an idle-session killer does."""
    url = sa.engine.make_url(store_url)
    admin = open_store(store_url, upgrade=False)

    def end() -> None:
        with admin.connect() as conn:
            if url.get_backend_name() == "postgresql":
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": url.database},
                )
            else:
                mine = conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
                ids = conn.execute(
                    sa.text("SELECT id FROM information_schema.processlist WHERE db = :db AND id <> :me"),
                    {"db": url.database, "me": mine},
                ).scalars()
                for session in list(ids):
                    conn.execute(sa.text(f"KILL CONNECTION {int(session)}"))
            conn.commit()

    return end


def hook(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, action: Callable[[], None], at: int | None = 1
) -> list[str]:
    """Run `action` when `module` reaches `checkpoint(name)` for the `at`-th time (every time: None); returns the
    names reached."""
    reached: list[str] = []
    original = module.checkpoint

    def checkpoint(point: str) -> None:
        reached.append(point)
        if point == name and (at is None or reached.count(point) == at):
            action()
        original(point)

    monkeypatch.setattr(module, "checkpoint", checkpoint)
    return reached


def before_call(
    monkeypatch: pytest.MonkeyPatch, owner: Any, attribute: str, action: Callable[[], None], at: int | None = 1
) -> list[int]:
    """Run `action` just before the `at`-th call of `owner.attribute` (every call: None); returns one item per call
    made."""
    calls: list[int] = []
    original = getattr(owner, attribute)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls) + 1)
        if at is None or len(calls) == at:
            action()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, wrapper)
    return calls


def add_customers(erp: SqliteErp, count: int, first: int = 1) -> None:
    """`count` tagged, active customers numbered from `first`, written in one transaction (`SqliteErp.add` opens the
    database once per customer)."""
    rows = [
        (n, f"Firma {n} sp. z o.o.", f"klient{n}@example.pl", "b2b", "1", "pl") for n in range(first, first + count)
    ]
    db = sqlite3.connect(erp.path)
    try:
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO customers (erp_id, name, email, tags, active, locale)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        db.close()
