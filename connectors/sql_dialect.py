"""A preset's T-SQL in the dialect of the database the ODBC connection actually reached.

The shipped presets are written once, in T-SQL, for the SQL Server their ERPs run on, and run there as they
are. The replicas that prove them run on PostgreSQL and SQLite (and a consultant may point a preset at a MariaDB
copy), so for those engines the text is transpiled with sqlglot, which parses T-SQL and writes the others.
On top of sqlglot's own rules, three differences matter for these queries:

- `N'…'` (a national string) is T-SQL; SQLite reads `N` as a column name, so it becomes a plain string
  everywhere but SQL Server (PostgreSQL, SQLite and MariaDB strings hold Unicode anyway);
- SQLite has no schemas inside one database file, and on MariaDB a schema is a database: there
  `ModelDanychContainer.Podmioty` loses its schema, so the preset reads the tables of the file or of the
  database the connection names (a copy of one ERP company database, like the SQL Server database the DSN
  names), whatever that database is called;
- SQLite before 3.44 has no `CONCAT`, so T-SQL's `CONCAT(a, b)` (NULL read as empty) becomes
  `COALESCE(a, '') || COALESCE(b, '')`.

Identifiers are quoted in the output, so PostgreSQL keeps the mixed case of `Podmioty.NazwaSkrocona` as SQL
Server spells it instead of folding it to lower case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrator.errors import ConfigError

if TYPE_CHECKING:  # sqlglot is imported only when a query is parsed or translated
    import sqlglot.expressions as exp

__all__ = ["SCHEMALESS", "SOURCE_DIALECT", "dialect_for", "parse_tsql", "translate"]

SOURCE_DIALECT = "tsql"
"""sqlglot's name for the dialect presets are written in."""

SCHEMALESS = frozenset({"sqlite", "mysql"})
"""Dialects whose translated queries name tables without their T-SQL schema (the connected database's)."""

_ENGINES = (
    ("sql server", None),
    ("sqlite", "sqlite"),
    ("postgres", "postgres"),
    ("mariadb", "mysql"),
    ("mysql", "mysql"),
)


def dialect_for(dbms_name: str) -> str | None:
    """sqlglot's dialect for an ODBC `SQL_DBMS_NAME` ("PostgreSQL", "SQLite", "MariaDB", "Microsoft SQL
    Server"); None means run the T-SQL as it is (SQL Server, and any engine not named here)."""
    name = dbms_name.casefold()
    for marker, dialect in _ENGINES:
        if marker in name:
            return dialect
    return None


def parse_tsql(sql: str, where: str = "the query") -> list[exp.Expression]:
    """The statements of `sql` as SQL Server would read them; a syntax error is a `ConfigError` naming `where`."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        statements = [statement for statement in sqlglot.parse(sql, read=SOURCE_DIALECT) if statement is not None]
    except SqlglotError as exc:
        raise ConfigError(f"{where} is not valid T-SQL: {exc}") from None
    if not statements:
        raise ConfigError(f"{where} is empty")
    return statements


def translate(sql: str, dialect: str | None, where: str = "the query") -> str:
    """`sql` (T-SQL) written for `dialect` (a name `dialect_for` returns); unchanged for None (SQL Server)."""
    if dialect is None:
        return sql
    statements = parse_tsql(sql, where)
    if len(statements) != 1:
        raise ConfigError(f"{where} must be one statement; it has {len(statements)}")
    tree = statements[0].transform(_plain_strings)
    if dialect in SCHEMALESS:  # a second pass: a replaced node's children are not visited again
        tree = tree.transform(_drop_schema)
    if dialect == "sqlite":
        tree = tree.transform(_sqlite_concat)
    return tree.sql(dialect=dialect, identify=True)


def _plain_strings(node: exp.Expression) -> exp.Expression:
    import sqlglot.expressions as exp

    return exp.Literal.string(node.this) if isinstance(node, exp.National) else node


def _drop_schema(node: exp.Expression) -> exp.Expression:
    import sqlglot.expressions as exp

    if isinstance(node, exp.Table) and (node.args.get("db") is not None or node.args.get("catalog") is not None):
        node = node.copy()
        node.set("db", None)
        node.set("catalog", None)
    return node


def _sqlite_concat(node: exp.Expression) -> exp.Expression:
    import sqlglot.expressions as exp

    if not isinstance(node, exp.Concat):
        return node
    # a replaced node's children are not visited again: a CONCAT inside this one is rewritten here
    parts = [exp.func("COALESCE", part.transform(_sqlite_concat), exp.Literal.string("")) for part in node.expressions]
    joined = parts[0]
    for part in parts[1:]:
        joined = exp.DPipe(this=joined, expression=part)
    return exp.Paren(this=joined)
