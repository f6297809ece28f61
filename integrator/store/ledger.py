"""The ledger of live accounts a sync starts from, and the store look-ups its decisions need.

Loaded through the raw DBAPI cursor into plain dicts: a million live accounts must cost a fraction of a second
and a few hundred bytes each, not a million SQLAlchemy rows or objects.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.identity import split_key
from integrator.reconcile import Ledger
from integrator.store.schema import accounts

__all__ = ["StoreLookups", "has_live_accounts", "load_live_ledger"]

_CHUNK = 500


def load_live_ledger(conn: sa.Connection) -> Ledger:
    """identity key -> fingerprint of every live account (the dict is built by C code from the cursor's pairs); the
    key is the erp_id of a per-customer account (`integrator.identity`)."""
    cursor = conn.exec_driver_sql("SELECT live_key, fingerprint FROM accounts WHERE live_key IS NOT NULL").cursor
    ledger: Ledger = {}
    while rows := cursor.fetchmany(50000):
        ledger.update(rows)
    cursor.close()
    return ledger


def has_live_accounts(conn: sa.Connection) -> bool:
    """Whether any account is live (one probe of the `live_key` index)."""
    probe = sa.select(accounts.c.live_key).where(accounts.c.live_key.is_not(None)).limit(1)
    return conn.execute(probe).first() is not None


class StoreLookups:
    """`reconcile.Lookups` answered by the store, in chunks, for the few logins and customers concerned.

    Read on connections of its own (`engine`), never on the run's: a look-up must not commit, or see, the work the
    run's connection has in hand (its staging table, an open transaction)."""

    def __init__(self, engine: Engine, ledger: Ledger) -> None:
        self._engine = engine
        self._empty = not ledger
        self._any_closed: bool | None = None

    def store_is_empty(self) -> None:
        """The store holds no account at all, and will not before this run commits: look nothing up (a first
        load holding the tables would keep another session's look-up waiting)."""
        self._empty = True
        self._any_closed = False

    def holders(self, logins: Collection[str]) -> dict[str, str]:
        if self._empty:  # an initial sync: nobody holds anything, and its logins are many
            return {}
        rows = self._select([accounts.c.live_login, accounts.c.live_key], accounts.c.live_login, logins)
        return {login: erp_id for login, erp_id in rows}

    def accounts(self, erp_ids: Collection[str]) -> dict[str, tuple[str, str]]:
        columns = [accounts.c.live_key, accounts.c.id, accounts.c.login]
        return {erp_id: (account_id, login) for erp_id, account_id, login in self._select(columns, columns[0], erp_ids)}

    def closed(self, erp_ids: Collection[str]) -> set[str]:
        if self._any_closed is None:  # one probe: a store that never removed anybody has no re-adds to look for
            probe = sa.select(accounts.c.id).where(accounts.c.status == "removed").limit(1)
            with self._engine.connect() as conn:
                self._any_closed = conn.execute(probe).first() is not None
        if not self._any_closed:
            return set()
        wanted = {split_key(key): key for key in erp_ids}
        removed = accounts.c.status == "removed"
        columns = [accounts.c.erp_id, accounts.c.contact_id]
        found = self._select(columns, accounts.c.erp_id, {erp_id for erp_id, _ in wanted}, removed)
        return {wanted[pair] for pair in map(tuple, found) if pair in wanted}

    def _select(
        self, columns: list[sa.Column], key: sa.Column, wanted: Collection[str], *where: sa.ColumnElement[bool]
    ) -> list[sa.Row]:
        rows: list[sa.Row] = []
        items = list(wanted)
        with self._engine.connect() as conn:
            for start in range(0, len(items), _CHUNK):
                rows += conn.execute(sa.select(*columns).where(key.in_(items[start : start + _CHUNK]), *where)).all()
        return rows
