"""The per-run staging table: accounts to create or update, written in large batches while the source is read.

It is a temporary table on the run's own connection, so it vanishes with the connection (or a crash) and
needs no cleanup; creates are then applied with set-based `INSERT … SELECT`, not row by row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa

from integrator.records import SYNCED_FIELDS, Record

__all__ = ["STAGED_FIELDS", "Staging"]

STAGED_FIELDS: tuple[str, ...] = tuple(f for f in SYNCED_FIELDS if f != "login")
"""Record fields copied into the account (besides login and fingerprint)."""

_COLUMNS = ("seq", "action", "erp_id", "account_id", "login", "fingerprint", *STAGED_FIELDS)


def _staging_table(metadata: sa.MetaData) -> sa.Table:
    # Unbounded text: a value too long for `accounts` must fail (and be quarantined) when that one account is
    # applied, not take the whole staging batch, and so the run, down with it.
    return sa.Table(
        "sync_staging",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("erp_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("login", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        *(sa.Column(name, sa.Numeric(24, 6) if name == "discount" else sa.Text) for name in STAGED_FIELDS),
        prefixes=["TEMPORARY"],
    )


class Staging:
    """Buffers staged rows and flushes them with one `executemany` per batch."""

    def __init__(self, connection: sa.Connection, batch_size: int = 5000) -> None:
        self.connection = connection
        self.table = _staging_table(sa.MetaData())
        self._batch_size = batch_size
        self._buffer: list[tuple[object, ...]] = []
        self._random = bytearray()
        self.count = 0
        self.table.drop(connection, checkfirst=True)
        self.table.create(connection)
        marks = ", ".join(_placeholder(connection, i) for i in range(len(_COLUMNS)))
        self._insert_sql = f"INSERT INTO sync_staging ({', '.join(_COLUMNS)}) VALUES ({marks})"

    def stage(self, action: str, erp_id: str, account_id: str | None, login: str, digest: str, record: Record) -> None:
        """Add one row; a create gets its new identity id here, once."""
        self.count += 1
        self._buffer.append(
            (
                self.count,
                action,
                erp_id,
                account_id or (self._new_id() if action == "create" else ""),
                login,
                digest,
                record.name,
                record.symbol,
                record.tax_id,
                record.phone,
                record.price_level,
                record.discount,
                record.sales_rep,
                record.sales_rep_email,
                record.locale,
            )
        )
        if len(self._buffer) >= self._batch_size:
            self.flush()

    def _new_id(self) -> str:
        """A random (version 4) UUID, minted from a pool of random bytes: `uuid.uuid4()` costs 4 µs each."""
        if not self._random:
            self._random = bytearray(os.urandom(16 * 4096))
        raw = self._random[-16:]
        del self._random[-16:]
        raw[6] = (raw[6] & 0x0F) | 0x40
        raw[8] = (raw[8] & 0x3F) | 0x80
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def flush(self) -> None:
        """Write what is buffered."""
        if self._buffer:
            self.connection.exec_driver_sql(self._insert_sql, self._buffer)
            self._buffer = []

    def drop_erp_ids(self, erp_ids: Sequence[str]) -> None:
        """Remove rows that lost their login after the read."""
        ids = list(erp_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self.connection.execute(sa.delete(self.table).where(self.table.c.erp_id.in_(chunk)))

    def close(self) -> None:
        """Drop the table (it also goes away with the connection)."""
        self.table.drop(self.connection, checkfirst=True)


def _placeholder(connection: sa.Connection, index: int) -> str:
    style = connection.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    if style == "numeric":
        return f":{index + 1}"
    if style == "named":
        return f":p{index}"
    raise NotImplementedError(f"paramstyle {style}")
