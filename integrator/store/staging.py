"""The per-run staging table: accounts to create or update, written in large batches while the source is read.

It is a temporary table on the run's own connection, so it vanishes with the connection (or a crash) and
needs no cleanup; creates are then applied with set-based `INSERT … SELECT`, not row by row.

Creates are numbered (`create_seq`) as they are staged; their identity ids are minted once the read is over, when
their number is known, into a second temporary table keyed by that number (see `identities`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa

from integrator.identity import split_key
from integrator.records import SYNCED_FIELDS, Record, attributes_json, normalize_login
from integrator.store.disconnect import reported_as
from integrator.store.identities import IdMinter

__all__ = ["IDENTITY_FIELDS", "STAGED_FIELDS", "Staging"]

STAGED_FIELDS: tuple[str, ...] = tuple(f for f in SYNCED_FIELDS if f != "login")
"""Record fields copied into the account (besides login and fingerprint)."""

_COLUMNS = ("seq", "action", "erp_id", "create_seq", "login", "fingerprint", *STAGED_FIELDS)
"""The columns `stage` writes; `account_id` is left to its default and set for updates when they are applied."""

IDENTITY_FIELDS: tuple[str, ...] = ("contact_id", "contact_name", "email", "attributes")
"""Account columns staged only when the config uses them (contacts, username logins, attributes): a plain
per-customer sync binds none of them, so it costs what it did before they existed."""
_EXTENDED_COLUMNS = (*_COLUMNS, "customer_id", *IDENTITY_FIELDS)


class _Loader(Protocol):
    def wait(self) -> None: ...
    def flushed(self, staged: int) -> None: ...


def _staging_table(metadata: sa.MetaData) -> sa.Table:
    # Unbounded text: a value too long for `accounts` must fail (and be quarantined) when that one account is
    # applied, not take the whole staging batch, and so the run, down with it.
    return sa.Table(
        "sync_staging",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column(
            "erp_id", sa.Text, nullable=False, comment="the identity key: the erp_id, or erp_id U+001F contact_id"
        ),
        sa.Column(
            "account_id",
            sa.String(36),
            nullable=False,
            server_default="",
            comment="updates: the live account (set before they are applied); creates: ''",
        ),
        sa.Column("create_seq", sa.Integer, comment="creates: 1, 2, … in staging order, the key of their new id"),
        sa.Column("login", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        # Text, the discount too: it is cast into `accounts.discount` when applied, where a value out of range
        # fails (and is quarantined) for its own record instead of failing the staging of the whole run.
        *(sa.Column(name, sa.Text) for name in STAGED_FIELDS),
        sa.Column("customer_id", sa.Text, comment="extended staging: the customer's erp_id (NULL: = erp_id)"),
        *(sa.Column(name, sa.Text) for name in IDENTITY_FIELDS),
        prefixes=["TEMPORARY"],
    )


def _new_ids_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "sync_new_ids",
        metadata,
        sa.Column("create_seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False),
        prefixes=["TEMPORARY"],
    )


class Staging:
    """Buffers staged rows and flushes them in batches: one `executemany`, or on PostgreSQL one `COPY`."""

    def __init__(
        self, connection: sa.Connection, batch_size: int = 5000, *, extended: bool = False, username: bool = False
    ) -> None:
        """`extended`: stage the identity fields too (contacts, usernames, attributes); `username`: logins are
        usernames, so each row's normalised e-mail is staged as where its mail goes."""
        self.connection = connection
        self.extended = extended
        self._username = username
        metadata = sa.MetaData()
        self.table = _staging_table(metadata)
        self.new_ids = _new_ids_table(metadata)
        """create_seq -> the identity id minted for the create of that number (filled by `ids_through`)."""
        self._batch_size = batch_size
        self._flush_at = batch_size if not extended else 1 << 62  # extended rows are flushed by _stage_extended
        self._buffer: list[tuple[object, ...]] = []
        self.count = 0
        self.creates = 0
        self._minted = 0
        self._minter: IdMinter | None = None
        for table in (self.table, self.new_ids):
            table.drop(connection, checkfirst=True)
            table.create(connection)
        self._write_staging = _bulk_writer(connection, "sync_staging", _EXTENDED_COLUMNS if extended else _COLUMNS)
        if extended:
            self.stage = self._stage_extended  # type: ignore[method-assign]
        self._prepare_ids, self._write_ids = _id_writer(connection)
        self.loader: _Loader | None = None
        """Told of every write, and waited for before the next one (`integrator.store.early_load`)."""

    def stage(self, action: str, erp_id: str, login: str, digest: str, record: Record) -> None:
        """Add one row; a create gets its `create_seq`, the key of the identity id `ids_through` gives it."""
        self.count += 1
        create_seq = None
        discount = record.discount
        if action == "create":
            self.creates += 1
            create_seq = self.creates
        self._buffer.append(
            (
                self.count,
                action,
                erp_id,
                create_seq,
                login,
                digest,
                record.name,
                record.symbol,
                record.tax_id,
                record.phone,
                record.price_level,
                # As text here: sqlite3's adapter for Decimal (a Python call per value) cost a third of
                # staging's whole executemany.
                None if discount is None else str(discount),
                record.sales_rep,
                record.sales_rep_email,
                record.locale,
            )
        )
        if len(self._buffer) >= self._flush_at:
            self.flush()

    def _stage_extended(self, action: str, erp_id: str, login: str, digest: str, record: Record) -> None:
        """`stage` with the identity fields: the customer's erp_id, the contact, the e-mail (username logins), the
        attributes as canonical JSON."""
        Staging.stage(self, action, erp_id, login, digest, record)  # never flushes: `_flush_at` is out of reach
        row = self._buffer.pop()
        customer_id, _ = split_key(erp_id)
        email = normalize_login(record.email) if self._username else None
        self._buffer.append((*row, customer_id, record.contact_id, record.contact_name, email,
                             attributes_json(record.attributes)))  # fmt: skip
        if len(self._buffer) >= self._batch_size:
            self.flush()

    @reported_as("the creates (writing their new ids)")
    def ids_through(self, create_seq: int) -> None:
        """Make sure the creates numbered up to `create_seq` have their ids (minted in ascending order of
        `create_seq` by a thread started at the first call; see `identities`). The caller commits."""
        if self._minted >= create_seq:
            return
        minter = self.start_minting()
        while self._minted < create_seq:
            _, count, prepared = minter.next()
            self._write_ids(prepared)
            self._minted += count

    def start_minting(self) -> IdMinter:
        """Start minting the ids of every staged create in a thread (once the read is over), or return the
        minter that runs."""
        if self._minter is None:
            self._minter = IdMinter(self.creates, self._prepare_ids)
        return self._minter

    def stop_minting(self) -> None:
        """Stop the minting thread, if one runs (the ids written so far stay)."""
        if self._minter is not None:
            self._minter.close()
            self._minter = None

    @reported_as("the staging")
    def flush(self) -> None:
        """Write what is buffered."""
        if self._buffer:
            if self.loader is not None:
                self.loader.wait()
            self._write_staging(self._buffer)
            self._buffer = []
            if self.loader is not None:
                self.loader.flushed(self.count)

    @reported_as("the staging")
    def drop_erp_ids(self, erp_ids: Sequence[str]) -> None:
        """Remove rows that lost their login after the read."""
        ids = list(erp_ids)
        if self.loader is not None:
            self.loader.wait()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self.connection.execute(sa.delete(self.table).where(self.table.c.erp_id.in_(chunk)))


def _id_writer(connection: sa.Connection) -> tuple[Callable[[int, list[str]], Any], Callable[[Any], None]]:
    """(prepare, write) for chunks of minted ids: `prepare(first, ids)` runs in the minting thread, `write` on
    the run's connection. SQLite takes a chunk as one JSON array that it splits itself (half the time of an
    `executemany`); PostgreSQL the chunk as `COPY` text (ids and numbers need no escaping), which the thread makes
    and the run's thread sends (0.6 s instead of 0.9 s for 650,000 ids: one `write_row` per id took the rest); the
    other stores take rows through their bulk writer."""
    if connection.dialect.name == "sqlite":
        insert = "INSERT INTO sync_new_ids (create_seq, id) SELECT key + ?, value FROM json_each(?)"
        return (lambda first, ids: (first, json.dumps(ids))), (lambda chunk: connection.exec_driver_sql(insert, chunk))
    if _copies(connection):  # COPY's text format, made in the minting thread: the run's thread only sends it
        send = _copy_writer(connection, "sync_new_ids", ("create_seq", "id"), lambda stream, data: stream.write(data))
        return (lambda first, ids: "".join([f"{n}\t{id_}\n" for n, id_ in enumerate(ids, first)]).encode()), send
    write_rows = _bulk_writer(connection, "sync_new_ids", ("create_seq", "id"))
    return (lambda first, ids: list(enumerate(ids, first))), write_rows


def _copies(connection: sa.Connection) -> bool:
    """Whether the store takes bulk rows through `COPY … FROM STDIN` (PostgreSQL through psycopg)."""
    return connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg"


def _bulk_writer(
    connection: sa.Connection, table: str, columns: Sequence[str]
) -> Callable[[Sequence[tuple[object, ...]]], None]:
    """A function writing rows into `table`: `COPY … FROM STDIN` on PostgreSQL through psycopg (its
    `executemany` sends one statement per row, about twelve times slower here), else one `executemany`."""
    if _copies(connection):

        def rows_to(stream: Any, rows: Sequence[tuple[object, ...]]) -> None:
            for row in rows:
                stream.write_row(row)

        return _copy_writer(connection, table, columns, rows_to)
    names = ", ".join(columns)
    marks = ", ".join(_placeholder(connection, i) for i in range(len(columns)))
    insert = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    return lambda rows: connection.exec_driver_sql(insert, rows)  # type: ignore[arg-type]


def _copy_writer(
    connection: sa.Connection, table: str, columns: Sequence[str], feed: Callable[[Any, Any], None]
) -> Callable[[Any], None]:
    """A function sending `data` to `COPY table (columns) FROM STDIN` through `feed(stream, data)`."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"

    def copy(data: Any) -> None:
        # The run's own DBAPI connection, so the rows join its transaction like any other write. Begun
        # through SQLAlchemy first: a failed COPY must leave a transaction that `rollback()` knows to end.
        if not connection.in_transaction():
            connection.begin()
        dbapi = connection.connection.dbapi_connection
        try:
            with dbapi.cursor() as cursor, cursor.copy(sql) as stream:  # type: ignore[union-attr]
                feed(stream, data)
        except connection.dialect.loaded_dbapi.Error as exc:
            if not connection.dialect.is_disconnect(exc, dbapi, None):
                raise
            # SQLAlchemy never saw this statement: tell it the session is gone, as its own statements would.
            connection.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                sql, None, exc, connection.dialect.loaded_dbapi.Error, connection_invalidated=True
            ) from exc

    return copy


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
