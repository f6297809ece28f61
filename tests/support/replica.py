"""An ERP's tables rebuilt on SQLite (through the SQLite3 ODBC driver) or PostgreSQL (through psqlODBC), under
the ERP's own schema, table and column names, for the shipped presets to run on.

Types are the ERP's SQL Server types, mapped to what each engine has: on PostgreSQL `bit` and `tinyint` become
`smallint` (a T-SQL `Aktywny = 1` compares a number, which a PostgreSQL boolean refuses), `nvarchar(n)`
`varchar(n)` in a UTF-8 database, `uniqueidentifier` `uuid`, `binary(n)` `bytea`, `decimal` `numeric(19,6)`.
SQLite keeps the declared type names (its type affinity reads them) and has no schemas inside one file: the
tables live in the file itself, and the preset's `Schema.Table` loses its schema in translation
(`integrator.connectors.sql_dialect`). PostgreSQL gets the real schema, with names quoted so their case is
SQL Server's.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import PG_HOST, PG_PORT

Tables = Mapping[str, Mapping[str, str]]
"""table name -> {column name: SQL Server type}, in column order."""

_PG_TYPES = (
    (r"^(bit|tinyint)$", "smallint"),
    (r"^n?varchar\((\d+|max)\)$", None),
    (r"^uniqueidentifier$", "uuid"),
    (r"^(var)?binary\(\d+\)$", "bytea"),
    (r"^decimal$", "numeric(19,6)"),
    (r"^datetime2?$", "timestamp"),
)


def pg_type(sql_server_type: str) -> str:
    """The PostgreSQL type standing in for a SQL Server column type."""
    kind = sql_server_type.lower()
    for pattern, replacement in _PG_TYPES:
        match = re.match(pattern, kind)
        if match and replacement is None:
            size = match.group(1)
            return "text" if size == "max" else f"varchar({size})"
        if match:
            return replacement  # type: ignore[return-value]
    return kind


class Replica:
    """One ERP database: its tables created empty, rows written by the test between syncs."""

    def __init__(self, engine: str, schema: str, tables: Tables, where: str | Path) -> None:
        """`engine`: "sqlite" (`where` is the database file) or "postgres" (`where` is a database name)."""
        self.engine, self.schema, self.tables, self.where = engine, schema, tables, where
        with self._db() as execute:
            if engine == "postgres" and schema != "public":
                execute(f'CREATE SCHEMA "{schema}"')
            for table, columns in tables.items():
                kinds = columns if engine == "sqlite" else {name: pg_type(kind) for name, kind in columns.items()}
                definition = ", ".join(f'"{name}" {kind}' for name, kind in kinds.items())
                execute(f"CREATE TABLE {self._name(table)} ({definition})")

    @property
    def connection_string(self) -> str:
        """How the product reaches this database through ODBC."""
        if self.engine == "sqlite":
            return f"Driver=SQLite3;Database={self.where}"
        return f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Database={self.where};Uid=postgres;"

    def insert(self, table: str, **values: Any) -> None:
        """One row; columns not given stay NULL."""
        self._check(table, values)
        names = ", ".join(f'"{name}"' for name in values)
        with self._db() as execute:
            execute(
                f"INSERT INTO {self._name(table)} ({names}) VALUES ({self._marks(len(values))})", list(values.values())
            )

    def update(self, table: str, where: Mapping[str, Any], **values: Any) -> None:
        """Set `values` on the rows matching every `where` column."""
        self._check(table, {**where, **values})
        assignments = ", ".join(f'"{name}" = {self._marks(1)}' for name in values)
        condition = " AND ".join(f'"{name}" = {self._marks(1)}' for name in where)
        with self._db() as execute:
            execute(
                f"UPDATE {self._name(table)} SET {assignments} WHERE {condition}", [*values.values(), *where.values()]
            )

    def delete(self, table: str, **where: Any) -> None:
        """Delete the rows matching every `where` column."""
        self._check(table, where)
        condition = " AND ".join(f'"{name}" = {self._marks(1)}' for name in where)
        with self._db() as execute:
            execute(f"DELETE FROM {self._name(table)} WHERE {condition}", list(where.values()))

    def drop_column(self, table: str, column: str) -> None:
        """Remove one column (an older or newer ERP version without it)."""
        with self._db() as execute:
            execute(f'ALTER TABLE {self._name(table)} DROP COLUMN "{column}"')

    def drop_table(self, table: str) -> None:
        """Remove one table (a version of the ERP without it, or a login that may not see it)."""
        with self._db() as execute:
            execute(f"DROP TABLE {self._name(table)}")

    def _check(self, table: str, values: Mapping[str, Any]) -> None:
        unknown = set(values) - set(self.tables[table])
        assert not unknown, f"{table} has no columns {sorted(unknown)}"

    def _name(self, table: str) -> str:
        return f'"{table}"' if self.engine == "sqlite" else f'"{self.schema}"."{table}"'

    def _marks(self, count: int) -> str:
        return ", ".join(["?" if self.engine == "sqlite" else "%s"] * count)

    @contextmanager
    def _db(self) -> Iterator[Any]:
        if self.engine == "sqlite":
            connection = sqlite3.connect(self.where, isolation_level=None)
            try:
                # sqlite3 binds no Decimal; a decimal column's NUMERIC affinity stores the text as a number
                yield lambda sql, params=(): connection.execute(
                    sql, [str(value) if isinstance(value, Decimal) else value for value in params]
                )
            finally:
                connection.close()
            return
        import psycopg

        with psycopg.connect(
            f"host={PG_HOST} port={PG_PORT} user=postgres dbname={self.where}", autocommit=True
        ) as connection:
            yield lambda sql, params=(): connection.execute(sql, params)
