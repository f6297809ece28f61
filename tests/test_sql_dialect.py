"""T-SQL preset text translated for the engine an ODBC connection reached, run there through the real drivers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pyodbc
import pytest

from integrator.connectors.sql_dialect import dialect_for, parse_tsql, translate
from integrator.errors import ConfigError
from tests.conftest import MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, require_odbc_driver

# What presets use: TOP in a subquery, N'' strings with Polish text, CONCAT (nested) over a NULL, ISNULL, CAST to
# NVARCHAR, CASE over a bit, a schema-qualified mixed-case table, a correlated lookup by name.
TSQL = """
SELECT CAST(p.Id AS NVARCHAR(20)) AS erp_id,
       CONCAT(p.Imie, CASE WHEN p.Nazwisko <> '' THEN CONCAT(N' ', p.Nazwisko) END) AS name,
       ISNULL(p.Email, N'brak') AS email,
       N'Zażółć' AS tags,
       CASE WHEN p.Aktywny = 1 THEN 1 ELSE 0 END AS active,
       (SELECT TOP 1 r.Nazwa FROM {schema}.Rodzaje AS r WHERE r.Nazwa = N'E-mail' ORDER BY r.Id) AS kind
FROM {schema}.Osoby AS p
WHERE p.Id > 0
ORDER BY p.Id
"""
EXPECTED = [
    ("1", "Łucja Wąs", "lucja@example.pl", "Zażółć", 1, "E-mail"),
    ("2", "Jerzy", "brak", "Zażółć", 0, "E-mail"),
]


def _rows(connection_string: str, sql: str) -> list[tuple[object, ...]]:
    with pyodbc.connect(connection_string, autocommit=True) as connection:
        dialect = dialect_for(connection.getinfo(pyodbc.SQL_DBMS_NAME))
        return [tuple(row) for row in connection.cursor().execute(translate(sql, dialect)).fetchall()]


def _fill(execute: Callable[[str], object], prefix: str = "", quote: str = '"') -> None:
    """The two tables, under `prefix` (a schema, quoted), with identifiers quoted so their case is kept."""

    def q(name: str) -> str:
        return f"{quote}{name}{quote}"

    execute(f"CREATE TABLE {prefix}{q('Rodzaje')} ({q('Id')} INTEGER, {q('Nazwa')} VARCHAR(32))")
    execute(f"INSERT INTO {prefix}{q('Rodzaje')} VALUES (2, 'Telefon'), (3, 'E-mail')")
    columns = ", ".join(
        f"{q(name)} {kind}"
        for name, kind in (("Id", "INTEGER"), ("Imie", "VARCHAR(32)"), ("Nazwisko", "VARCHAR(64)"),
                           ("Email", "VARCHAR(256)"), ("Aktywny", "SMALLINT"))
    )  # fmt: skip
    execute(f"CREATE TABLE {prefix}{q('Osoby')} ({columns})")
    execute(
        f"INSERT INTO {prefix}{q('Osoby')} VALUES "
        "(1, 'Łucja', 'Wąs', 'lucja@example.pl', 1), (2, 'Jerzy', NULL, NULL, 0)"
    )


def test_sqlite_through_the_odbc_driver(tmp_path: Path, sqlite_odbc: str) -> None:
    """SQLite: no schemas in one file (the schema is dropped), no N'' strings, no CONCAT before 3.44."""
    path = tmp_path / "erp.db"
    with sqlite3.connect(path) as db:
        _fill(db.execute)
    assert _rows(f"Driver={sqlite_odbc};Database={path}", TSQL.format(schema="ModelDanychContainer")) == EXPECTED


@pytest.mark.postgres
def test_postgresql_through_psqlodbc(pg_database: str) -> None:
    """PostgreSQL: a real schema, identifiers kept in their T-SQL case (quoted), TOP as LIMIT."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}", autocommit=True) as pg:
        pg.execute('CREATE SCHEMA "ModelDanychContainer"')
        _fill(pg.execute, '"ModelDanychContainer".')
    connection_string = (
        f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Database={pg_database};Uid=postgres;"
    )
    assert _rows(connection_string, TSQL.format(schema="ModelDanychContainer")) == EXPECTED


@pytest.mark.mariadb
def test_mariadb_through_connector_odbc(mariadb_database: str) -> None:
    """MariaDB: a schema is a database, so the T-SQL's schema is dropped and the connected database read
    (whatever it is called); CONCAT's NULLs read as empty."""
    require_odbc_driver("MariaDB Unicode")
    import pymysql

    db = pymysql.connect(
        host=MARIADB_HOST, port=MARIADB_PORT, user="root", database=mariadb_database, charset="utf8mb4"
    )
    try:
        with db.cursor() as cursor:
            _fill(cursor.execute, quote="`")
        db.commit()
    finally:
        db.close()
    connection_string = (
        f"Driver={{MariaDB Unicode}};Server={MARIADB_HOST};Port={MARIADB_PORT};Database={mariadb_database};"
        "Uid=root;Pwd=;CHARSET=utf8mb4"
    )
    assert _rows(connection_string, TSQL.format(schema="ModelDanychContainer")) == EXPECTED


def test_sql_server_runs_the_text_as_it_is() -> None:
    """SQL Server (Microsoft's driver and FreeTDS report the same name) and unknown engines get the text untouched."""
    sql = TSQL.format(schema="ModelDanychContainer")
    assert dialect_for("Microsoft SQL Server") is None
    assert dialect_for("Informix") is None
    assert translate(sql, None) is sql
    assert [dialect_for(name) for name in ("SQLite", "PostgreSQL", "MariaDB", "MySQL")] == [
        "sqlite",
        "postgres",
        "mysql",
        "mysql",
    ]


def test_syntax_sql_server_rejects_is_an_error_naming_the_query() -> None:
    with pytest.raises(ConfigError, match=r"preset 'x' \(customers\) is not valid T-SQL"):
        parse_tsql("SELECT a FROM (SELECT b FROM t", "preset 'x' (customers)")
    with pytest.raises(ConfigError, match="is not valid T-SQL"):
        parse_tsql("SELECT N'unterminated FROM t")
    with pytest.raises(ConfigError, match="must be one statement; it has 2"):
        translate("SELECT 1; SELECT 2", "sqlite")
    assert len(parse_tsql("SELECT TOP 1 N'ż' AS a FROM ModelDanychContainer.Podmioty ORDER BY 1")) == 1
