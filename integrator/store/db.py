"""Opening the store: one engine per URL, the schema brought up to date by Alembic migrations."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import make_url

from integrator.errors import StoreError

__all__ = ["migrate", "open_store", "redact_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as "<invalid url>", never echoed
        return "<invalid url>"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: the index pages a large sync touches stay cached
    cursor.close()


def _alembic_config(connection: sa.Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")


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
    return engine
