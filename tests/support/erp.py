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
CONTACT_COLUMNS = ("erp_id", "contact_id", "email", "name", "phone", "active", "access", "locale", "username")


class SqliteErp:
    """An ERP whose customers a test adds, edits, tags, untags and deletes between syncs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS customers (erp_id INTEGER PRIMARY KEY, name TEXT, email TEXT, tags TEXT,"
                " symbol TEXT, tax_id TEXT, phone TEXT, price_level TEXT, discount NUMERIC, sales_rep TEXT,"
                " sales_rep_email TEXT, active TEXT DEFAULT 1, locale TEXT, username TEXT, credit_limit NUMERIC,"
                " payment_terms TEXT)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS contacts (erp_id INTEGER, contact_id INTEGER, email TEXT, name TEXT,"
                " phone TEXT, active TEXT DEFAULT 1, access TEXT DEFAULT 1, locale TEXT, username TEXT,"
                " credit_limit NUMERIC, PRIMARY KEY (erp_id, contact_id))"
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

    def add_contact(self, erp_id: int, contact_id: int, email: str | None = None, **fields: Any) -> None:
        """Insert or replace one contact person of a customer (defaults: active, with access, an e-mail)."""
        row = {"erp_id": erp_id, "contact_id": contact_id,
               "email": email if email is not None else f"osoba{contact_id}.k{erp_id}@example.pl",
               "name": f"Osoba {contact_id} Żółć", **fields}  # fmt: skip
        with self._db() as db:
            db.execute(
                f"INSERT OR REPLACE INTO contacts ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                list(row.values()),
            )

    def set_contact(self, customer: int, contact_id: int, **fields: Any) -> None:
        """Change fields of one contact of `customer` (`erp_id` may be among them: the contact moves to another
        customer)."""
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._db() as db:
            db.execute(
                f"UPDATE contacts SET {assignments} WHERE erp_id = ? AND contact_id = ?",
                [*fields.values(), customer, contact_id],
            )

    def delete_contact(self, erp_id: int, contact_id: int) -> None:
        """Delete one contact from the ERP."""
        with self._db() as db:
            db.execute("DELETE FROM contacts WHERE erp_id = ? AND contact_id = ?", [erp_id, contact_id])

    def contacts_source(
        self, *extra_customer: str, contact_columns: tuple[str, ...] = CONTACT_COLUMNS
    ) -> dict[str, Any]:
        """The `[source]` table reading customers (with `extra_customer` columns) and their contacts."""
        return self.source(
            query=f"SELECT {', '.join((*COLUMNS, *extra_customer))} FROM customers",
            contacts_query=f"SELECT {', '.join(contact_columns)} FROM contacts",
        )

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
