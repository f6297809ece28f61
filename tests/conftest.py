"""Shared fixtures: real databases, real ODBC drivers, throwaway files.

External services (PostgreSQL, MariaDB) are used when reachable. Outside CI a missing one skips its tests
with the reason; under `CI=true` a missing service fails them, because CI must prove every backend.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from support.nexo_replica import NexoReplica

PG_HOST, PG_PORT = "127.0.0.1", 5432
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306
IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, under CI=true, fail) when a service the test needs is not running."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}, and CI=true requires it")
    pytest.skip(message)


def require_odbc_driver(driver: str) -> None:
    """Skip (or fail under CI) when an ODBC driver is not installed (scripts/install.sh installs them)."""
    import pyodbc

    if driver in pyodbc.drivers():
        return
    message = f"ODBC driver {driver!r} is not installed (run scripts/install.sh); have {pyodbc.drivers()}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; yields its name and drops it afterwards."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    name = f"it_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """SQLAlchemy URL of a fresh PostgreSQL database."""
    return f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{pg_database}"


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    """A fresh, empty MariaDB database; yields its name and drops it afterwards."""
    require_service("MariaDB", MARIADB_HOST, MARIADB_PORT)
    import pymysql

    name = f"it_{uuid.uuid4().hex[:12]}"
    conn = pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def mariadb_url(mariadb_database: str) -> str:
    """SQLAlchemy URL of a fresh MariaDB database."""
    return f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{mariadb_database}?charset=utf8mb4"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store test on every supported backend (SQLite always; the servers when reachable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return request.getfixturevalue("mariadb_url")


@pytest.fixture
def sqlite_odbc() -> str:
    """Name of the SQLite 3 ODBC driver, after checking it is installed."""
    require_odbc_driver("SQLite3")
    return "SQLite3"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def nexo(request: pytest.FixtureRequest, tmp_path: Path) -> NexoReplica:
    """A replica of Subiekt nexo's tables (`support.nexo_replica`), on SQLite and on PostgreSQL."""
    from support.nexo_replica import NexoReplica

    if request.param == "sqlite":
        require_odbc_driver("SQLite3")
        return NexoReplica("sqlite", tmp_path / "nexo.db")
    require_odbc_driver("PostgreSQL Unicode")
    return NexoReplica("postgres", request.getfixturevalue("pg_database"))
