"""Opening the store: one engine per URL, the schema brought up to date by Alembic migrations."""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import weakref
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import make_url

from integrator.errors import StoreError

if TYPE_CHECKING:  # Alembic (a third of a second to import) is loaded only when the schema is not current
    from alembic.config import Config as AlembicConfig

__all__ = ["close_stores", "migrate", "open_store", "redact_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_OPENED: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Every engine `open_store` made and that is still referenced, for `close_stores`."""


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as "<invalid url>", never echoed
        return "<invalid url>"


SQLITE_PAGE_SIZE = 16384
"""Page size of a new SQLite store (SQLite's default is 4096). A sync writes accounts, their events and their
mails by the hundred thousand: with 16 KiB pages every index is shallower, each commit writes fewer WAL frames,
and an initial sync of 620,000 accounts applies in 4.5 s instead of 5.4 s. An existing store keeps its size."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:  # a new, empty database: its page size is open
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: the index pages a large sync touches stay cached
    cursor.close()


def _alembic_config(connection: sa.Connection) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def newest_revision() -> str:
    """The revision of the newest migration file (`NNNN_name.py`, revisions numbered in file order), read without
    Alembic; `tests/test_store_schema.py` checks it is Alembic's one head."""
    newest = max(_MIGRATIONS.joinpath("versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    found = re.search(r'^revision = "([^"]+)"', newest.read_text(encoding="utf-8"), re.MULTILINE)
    if found is None:
        raise StoreError(f"migration {newest.name} names no revision")
    return found.group(1)


def _at_head(connection: sa.Connection) -> bool:
    """Whether the store is at the newest revision, asked with one query: a store that is current (every run but
    the first) never loads Alembic. Anything else (no version table, an older or unknown revision) is Alembic's
    to judge."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return False
    current = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    if current == [newest_revision()]:
        return True
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_alembic_config(connection)).get_heads()
    return set(MigrationContext.configure(connection).get_current_heads()) == set(heads)


@contextlib.contextmanager
def _migration_lock(connection: sa.Connection) -> Iterator[None]:
    """Processes opening a store that needs migrating take turns (two first runs on a new store would both
    create the tables, and all but one fail): the upgrade then finds the schema current and does nothing."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7046317723160)")  # released at commit
        yield
    elif dialect in ("mysql", "mariadb"):
        connection.exec_driver_sql("SELECT GET_LOCK('integrator.migrate', 300)")
        try:
            yield
        finally:
            connection.exec_driver_sql("SELECT RELEASE_LOCK('integrator.migrate')")
    else:
        if dialect == "sqlite":  # the write lock now (waiting out busy_timeout), not at the first DDL
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield


def write_lock_now(conn: sa.Connection) -> None:
    """On SQLite, take the write lock at the start of a transaction that reads, then writes: its reads are then
    the latest, and its writes cannot be refused because another connection wrote since it read (that refusal
    comes at once, without waiting out busy_timeout). Other stores lock rows as they go; nothing to do there."""
    if conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


_VERSION_TABLE = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's own version table, as Alembic creates it: a store created from the table definitions is stamped in
it, and later migrations go on from there."""


def _create_current(connection: sa.Connection) -> None:
    """Create the newest schema in an empty database from the table definitions, with the rows the migrations
    seed, and stamp it with the newest revision: Alembic's recipe for a new database ("Building an Up to Date
    Database from Scratch"). A first run makes its SQLite store in 0.04 s instead of the 0.35 s that loading
    Alembic and running every migration take; `tests/test_store_schema.py` checks both give the same
    tables, columns, indexes and rows."""
    from integrator.store.schema import SEED_ROWS, metadata

    metadata.create_all(connection)
    for table, rows in SEED_ROWS.items():
        connection.execute(table.insert(), rows)
    _VERSION_TABLE.create(connection)  # last: on MariaDB, whose DDL is not transactional, it marks a finished store
    connection.execute(_VERSION_TABLE.insert().values(version_num=newest_revision()))


def migrate(engine: Engine, *, from_scratch: bool = True) -> None:
    """Bring the schema to the newest revision (idempotent; concurrent callers take turns). An empty database is
    created at the newest revision at once (`_create_current`) unless `from_scratch` is False: then it runs
    every migration, as an existing store would."""
    with engine.connect() as connection:
        current = _at_head(connection)
    if current:  # the common case needs no lock, so opening a store never waits for a running sync
        return
    with engine.begin() as connection, _migration_lock(connection):
        if from_scratch and not sa.inspect(connection).get_table_names():
            _create_current(connection)
            return
        from alembic import command

        command.upgrade(_alembic_config(connection), "head")


def close_stores() -> None:
    """Close the pooled connections of every store this process opened, as a normal exit would: a command that
    ends with `os._exit` calls it first, so SQLite checkpoints its WAL into the database file (a copy of that file
    alone then holds every commit) and the servers see their sessions end cleanly."""
    for engine in list(_OPENED):
        engine.dispose()


def open_store(url: str, *, upgrade: bool = True) -> Engine:
    """An engine for `url` with its schema migrated; a clear `StoreError` when the store is unreachable."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"store url is not a valid SQLAlchemy URL: {type(exc).__name__}") from None
    kwargs: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=parsed.drivername + "+pymysql")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except Exception as exc:  # noqa: BLE001 - e.g. a missing DBAPI module
        raise StoreError(f"cannot open store {redact_url(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # Staging writes bypass SQLAlchemy's type processing; let sqlite3 store decimals as exact text.
        sqlite3.register_adapter(Decimal, str)
    try:
        if upgrade:
            migrate(engine)
        else:
            with engine.connect():
                pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot reach store {redact_url(url)}: {exc.orig}") from None
    _OPENED.add(engine)
    return engine
