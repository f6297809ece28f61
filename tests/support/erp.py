"""A tiny ERP customer table in SQLite, read by the product through the real SQLite3 ODBC driver."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from integrator.config import Config, config_from_dict

COLUMNS = (
    "erp_id", "name", "email", "tags", "symbol", "tax_id", "phone", "price_level", "discount", "sales_rep",
    "sales_rep_email", "active", "locale",
)  # fmt: skip


class SqliteErp:
    """An ERP whose customers a test adds, edits, tags, untags and deletes between syncs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS customers (erp_id INTEGER PRIMARY KEY, name TEXT, email TEXT, tags TEXT,"
                " symbol TEXT, tax_id TEXT, phone TEXT, price_level TEXT, discount NUMERIC, sales_rep TEXT,"
                " sales_rep_email TEXT, active TEXT DEFAULT 1, locale TEXT)"
            )

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def add(
        self,
        erp_id: int,
        name: str | None = None,
        email: str | None = None,
        tags: str | None = "b2b",
        **fields: Any,
    ) -> None:
        """Insert or replace one customer (defaults: tagged, active, a plausible e-mail)."""
        row = {"erp_id": erp_id, "name": name or f"Firma {erp_id} sp. z o.o.",
               "email": email if email is not None else f"klient{erp_id}@example.pl", "tags": tags, "active": 1,
               "locale": "pl", **fields}  # fmt: skip
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._db() as db:
            db.execute(f"INSERT OR REPLACE INTO customers ({names}) VALUES ({marks})", list(row.values()))

    def set(self, erp_id: int, **fields: Any) -> None:
        """Change fields of one customer."""
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE customers SET {assignments} WHERE erp_id = ?", [*fields.values(), erp_id])

    def delete(self, erp_id: int) -> None:
        """Delete one customer from the ERP."""
        with self._db() as db:
            db.execute("DELETE FROM customers WHERE erp_id = ?", [erp_id])

    def clear(self) -> None:
        """Delete every customer."""
        with self._db() as db:
            db.execute("DELETE FROM customers")

    def source(self, **overrides: Any) -> dict[str, Any]:
        """The `[source]` table reading this ERP through the SQLite3 ODBC driver."""
        return {
            "kind": "odbc",
            "connection_string": f"Driver=SQLite3;Database={self.path}",
            "query": f"SELECT {', '.join(COLUMNS)} FROM customers",
            **overrides,
        }


def make_config(erp: SqliteErp, store_url: str, tmp: Path, **sections: Any) -> Config:
    """A validated config: this ERP, the given store, file mail into tmp/mail; sections override tables."""
    data: dict[str, Any] = {
        "source": erp.source(),
        "store": {"url": store_url},
        "mail": {"backend": "file", "deliver_after_sync": False, "file": {"directory": str(tmp / "mail")}},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return config_from_dict(data, tmp / "config.toml")
