"""Whether the ERP database has every table and column a preset reads, asked before the preset runs.

ERP versions rename and drop columns (nexo between 11 and 12, Optima's `Knt_Email`), and a read-only login may
be refused a table. The preset would then fail at SQL Server with one error about the first name it trips on;
this names every missing table and column at once, before anything is read. What a preset reads is taken from
its T-SQL (sqlglot: each column resolved through its alias to its table, subqueries included); what the
database has from INFORMATION_SCHEMA.COLUMNS (SQL Server, PostgreSQL, MariaDB; views included, so GT's
`vwPoziomyCenWaluty` counts) or, on SQLite, which has none, from `sqlite_master` and `pragma_table_info`.
"""

from __future__ import annotations

from collections.abc import Iterable

from integrator.connectors.sql_dialect import SCHEMALESS, parse_tsql

__all__ = ["Needed", "catalog_query", "columns_used", "missing"]

Needed = dict[tuple[str, str], set[str]]
"""(schema, table) -> the columns read from it ("" for a table named without a schema)."""


def columns_used(sql: str, where: str = "the query") -> Needed:
    """Every table `sql` (T-SQL) reads and the columns it reads from each."""
    import sqlglot.expressions as exp
    from sqlglot.optimizer.scope import traverse_scope

    needed: Needed = {}
    for statement in parse_tsql(sql, where):
        for scope in traverse_scope(statement):
            for source in scope.sources.values():
                if isinstance(source, exp.Table):
                    needed.setdefault((source.db, source.name), set())
            for column in scope.columns:
                source, outer = None, scope
                while outer is not None and source is None:  # a correlated subquery names an outer alias
                    source, outer = outer.sources.get(column.table), outer.parent
                if isinstance(source, exp.Table):
                    needed.setdefault((source.db, source.name), set()).add(column.name)
    return needed


def catalog_query(dialect: str | None, tables: int) -> str:
    """The query listing (schema, table, column) of the named tables, `tables` `?` parameters for their names."""
    marks = ", ".join("?" * tables)
    if dialect == "sqlite":
        return (
            "SELECT '' AS table_schema, m.name AS table_name, p.name AS column_name FROM sqlite_master AS m "
            f"JOIN pragma_table_info(m.name) AS p WHERE m.type IN ('table', 'view') AND m.name IN ({marks})"
        )
    current = " AND TABLE_SCHEMA = DATABASE()" if dialect == "mysql" else ""  # the database the query reads
    return (
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
        f"WHERE TABLE_NAME IN ({marks}){current}"
    )


def missing(needed: Needed, present: Iterable[tuple[str, str, str]], dialect: str | None) -> list[str]:
    """`schema.table` for each missing table, `schema.table.column` for each missing column, sorted.

    SQLite has no schemas and MariaDB's are databases (the translated preset drops them and reads the connected
    database), so there only table names count. Names compare
    as the engine compares them once the preset runs: exactly on PostgreSQL (the translated preset quotes them),
    case-insensitively elsewhere (SQL Server's usual collations, MariaDB, SQLite)."""

    def fold(name: str) -> str:
        return name if dialect == "postgres" else name.casefold()

    have: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in present:
        key = (fold("" if dialect in SCHEMALESS else schema or ""), fold(table))
        have.setdefault(key, set()).add(fold(column))
    problems = []
    for (schema, table), columns in sorted(needed.items()):
        shown = f"{schema}.{table}" if schema else table
        found = have.get((fold("" if dialect in SCHEMALESS else schema), fold(table)))
        if found is None:
            problems.append(f"{shown} (table or view)")
            continue
        problems += [f"{shown}.{column} (column)" for column in sorted(columns) if fold(column) not in found]
    return problems
