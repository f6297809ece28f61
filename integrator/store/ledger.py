"""The ledger of live accounts a sync starts from, and the store look-ups its decisions need.

Loaded through the raw DBAPI cursor into plain dicts: a million live accounts must cost a fraction of a second
and a few hundred bytes each, not a million SQLAlchemy rows or objects.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from integrator.reconcile import Ledger
from integrator.store.schema import accounts

__all__ = ["StoreLookups", "has_live_accounts", "load_live_ledger"]

_CHUNK = 500


def load_live_ledger(conn: sa.Connection) -> Ledger:
    """erp_id -> fingerprint of every live account (the dict is built by C code from the cursor's pairs)."""
    cursor = conn.exec_driver_sql("SELECT live_erp_id, fingerprint FROM accounts WHERE live_erp_id IS NOT NULL").cursor
    ledger: Ledger = {}
    while rows := cursor.fetchmany(50000):
        ledger.update(rows)
    cursor.close()
    return ledger


def has_live_accounts(conn: sa.Connection) -> bool:
    """Whether any account is live (one probe of the `live_erp_id` index)."""
    probe = sa.select(accounts.c.live_erp_id).where(accounts.c.live_erp_id.is_not(None)).limit(1)
    return conn.execute(probe).first() is not None


class StoreLookups:
    """`reconcile.Lookups` answered by the store, in chunks, for the few logins and customers concerned."""

    def __init__(self, conn: sa.Connection, ledger: Ledger) -> None:
        self._conn = conn
        self._empty = not ledger

    def holders(self, logins: Collection[str]) -> dict[str, str]:
        if self._empty:  # an initial sync: nobody holds anything, and its logins are many
            return {}
        rows = self._select([accounts.c.live_login, accounts.c.live_erp_id], accounts.c.live_login, logins)
        return {login: erp_id for login, erp_id in rows}

    def accounts(self, erp_ids: Collection[str]) -> dict[str, tuple[str, str]]:
        columns = [accounts.c.live_erp_id, accounts.c.id, accounts.c.login]
        return {erp_id: (account_id, login) for erp_id, account_id, login in self._select(columns, columns[0], erp_ids)}

    def _select(self, columns: list[sa.Column], key: sa.Column, wanted: Collection[str]) -> list[sa.Row]:
        rows: list[sa.Row] = []
        items = list(wanted)
        for start in range(0, len(items), _CHUNK):
            rows += self._conn.execute(sa.select(*columns).where(key.in_(items[start : start + _CHUNK]))).all()
        self._conn.commit()
        return rows
