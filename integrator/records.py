"""The customer record every connector produces and every rule reads.

A `NamedTuple` rather than a dataclass: a sync builds one per ERP row (a million of them), and a tuple is
immutable, typed and several times cheaper to create.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import NamedTuple

__all__ = [
    "OPTIONAL_COLUMNS",
    "RECORD_COLUMNS",
    "REQUIRED_COLUMNS",
    "SYNCED_FIELDS",
    "Record",
    "fingerprint",
    "normalize_login",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("erp_id", "name", "email", "tags")
"""Columns a query, preset or CSV mapping must return (SPEC "Pinned contract")."""

OPTIONAL_COLUMNS: tuple[str, ...] = (
    "symbol",
    "tax_id",
    "phone",
    "price_level",
    "discount",
    "sales_rep",
    "sales_rep_email",
    "active",
    "locale",
)
RECORD_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

SYNCED_FIELDS: tuple[str, ...] = (
    "login",
    "name",
    "symbol",
    "tax_id",
    "phone",
    "price_level",
    "discount",
    "sales_rep",
    "sales_rep_email",
    "locale",
)
"""Account columns copied from the ERP; a change in any of them is an update."""


class Record(NamedTuple):
    """One ERP customer as the connector read it, values already cleaned of surrounding whitespace.

    `tags` are normalised by the connector: case-folded with all whitespace removed (" B2B " -> "b2b"), so
    rules compare them with a set lookup.

    `problems` lists values the connector could not interpret (e.g. `active = "maybe"`). Such a record is
    quarantined, never judged: a garbled row must not remove the customer's account. `origin` says where the
    record came from (a CSV line, a row number) so errors can point at it.
    """

    erp_id: str
    name: str | None
    email: str | None
    tags: frozenset[str]
    symbol: str | None = None
    tax_id: str | None = None
    phone: str | None = None
    price_level: str | None = None
    discount: Decimal | None = None
    sales_rep: str | None = None
    sales_rep_email: str | None = None
    active: bool = True
    locale: str | None = None
    problems: tuple[str, ...] = ()
    origin: str = ""
    digest: str = ""
    """A digest of the raw source row (and of the config that reads it), when the connector computes one: a
    later sync skips an unchanged row without converting or judging it again."""


def normalize_login(email: str | None) -> str:
    """The login an e-mail gives: trimmed and lower-cased (SPEC "Identity semantics")."""
    return (email or "").strip().lower()


def fingerprint(record: Record, login: str) -> str:
    """A stable digest of the synced fields, so an unchanged customer costs one string comparison."""
    parts = (
        login,
        record.name or "",
        record.symbol or "",
        record.tax_id or "",
        record.phone or "",
        record.price_level or "",
        "" if record.discount is None else str(record.discount),
        record.sales_rep or "",
        record.sales_rep_email or "",
        record.locale or "",
    )
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()
