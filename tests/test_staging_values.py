"""The staging table gives back every value it was given, on every store, whichever bulk path writes it (`COPY`
on PostgreSQL, `executemany` elsewhere)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from integrator.records import Record
from integrator.store.db import open_store
from integrator.store.staging import STAGED_FIELDS, Staging

AWKWARD = [
    'O\'Brien "Hurt" sp. z o.o.',
    "C:\\ścieżka\\nowa \\' \\\\",
    "tab\there\nnew line\r\nand a return",
    "100% 50%s %(name)s {0} $[0] ?",
    "Łódź Żółć 😀 \u2028 \u00a0 ß",
    "X'00' -- ; DROP TABLE accounts; /* */",
    "\x01\x1b\x7f control",
    "",
]


def _record(n: int, text: str) -> Record:
    return Record(
        erp_id=str(n),
        name=text,
        email=f"k{n}@example.pl",
        tags=frozenset({"b2b"}),
        symbol=text[:100] or None,
        phone=None,
        price_level=text,
        discount=Decimal("12.5000") if n % 2 else None,
        sales_rep=text,
        locale="pl",
        contact_id=text[:60] or None,
        contact_name=text,
        attributes=(("note", text), ("count", n)),
    )


@pytest.mark.parametrize("extended", [False, True], ids=["customers", "extended"])
def test_staged_rows_come_back_exactly(store_url: str, extended: bool) -> None:
    engine = open_store(store_url)
    with engine.connect() as conn:
        staging = Staging(conn, batch_size=3, extended=extended, username=extended)
        records = [_record(n, text) for n, text in enumerate(AWKWARD, 1)]
        for n, record in enumerate(records, 1):
            staging.stage("create" if n % 3 else "update", record.erp_id, f"login-{n}", f"{n:016x}", record)
        staging.flush()
        rows = conn.execute(sa.select(staging.table).order_by(staging.table.c.seq)).mappings().all()
        conn.rollback()
    engine.dispose()
    assert [r["seq"] for r in rows] == list(range(1, len(AWKWARD) + 1))
    assert [r["create_seq"] for r in rows] == [1, 2, None, 3, 4, None, 5, 6]
    for row, record in zip(rows, records, strict=True):
        assert row["erp_id"] == record.erp_id and row["login"].startswith("login-")
        for name in STAGED_FIELDS:
            value = getattr(record, name)
            assert row[name] == (None if value is None else str(value)), (name, record.erp_id)
        if extended:
            assert row["contact_id"] == record.contact_id and row["contact_name"] == record.contact_name
            assert row["email"] == record.email
            assert '"note"' in row["attributes"]


def test_mariadb_staging_refuses_a_text_longer_than_a_text_column_holds(mariadb_url: str) -> None:
    """On MariaDB 10.11 both `JSON_TABLE` and an `INSERT … SELECT` into a TEXT column cut a longer text short
    without an error (the latter to its length modulo 65,536), so the staging must never take a text through
    either: written as values, such a text is refused, never stored cut."""
    engine = open_store(mariadb_url)
    with engine.connect() as conn:
        staging = Staging(conn)
        fits = "ż" * 32_767  # 65,534 bytes
        staging.stage("create", "1", "k1@example.pl", "1" * 16, _record(1, "x")._replace(name=fits))
        staging.flush()
        assert conn.execute(sa.select(staging.table.c.name)).scalar() == fits
        staging.stage("create", "2", "k2@example.pl", "2" * 16, _record(2, "x")._replace(name="ż" * 32_768))
        with pytest.raises(sa.exc.DBAPIError):
            staging.flush()
        conn.rollback()
        assert conn.execute(sa.select(sa.func.count()).select_from(staging.table)).scalar() == 0
    engine.dispose()
