"""A first sync's reader leaves untagged rows out (`connectors.base.LeaveOut`): they never cross to the sync,
yet every count, row number and verdict is what a full read gives.

Driven through the real SQLite3 ODBC driver and its reader process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support.erp import COLUMNS, SqliteErp, make_config

from integrator.connectors import make_connector
from integrator.connectors.base import LeaveOut
from integrator.reconcile import Reconciler
from integrator.store.db import open_store
from integrator.store.schema import accounts
from integrator.sync import run_sync

_TAGS = ["b2b", " B2B ", "hurt", "", "vip, b2b", "b2bx", None]
"""Tagged in varied spelling, untagged, a near miss, no tags at all."""


def _erp(tmp_path: Path, customers: int = 3_000) -> SqliteErp:
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, customers + 1):
        erp.add(erp_id, tags=_TAGS[erp_id % len(_TAGS)])
    return erp


def _keyless_query() -> str:
    """Customers 5 and 12 come without an erp_id (12 is untagged): such rows are judged, never left out."""
    return f"SELECT NULLIF(NULLIF(erp_id, 5), 12) AS {', '.join(COLUMNS)} FROM customers ORDER BY customers.erp_id"


def test_the_reader_sends_tagged_and_keyless_rows_numbered_as_fetched(tmp_path: Path, sqlite_odbc: str) -> None:
    erp = _erp(tmp_path)
    config = make_config(erp, "sqlite://", tmp_path, source=erp.source(query=_keyless_query()))
    connector = make_connector(config.source)
    every = list(connector.records(digest_key=b"key", skip=lambda *_: False))
    left_out: list[int] = []

    def never_asked(*_: object) -> bool:
        raise AssertionError("a caller with no account is never asked whether a row is unchanged")

    sent = list(connector.records(digest_key=b"key", skip=never_asked, leave_out=LeaveOut("b2b", left_out.append)))

    def kept(record: object) -> bool:
        return "b2b" in record.tags or not record.erp_id  # type: ignore[attr-defined]

    expected = [(r.erp_id, r.origin, r.digest, r.tags) for r in every if kept(r)]
    assert [(r.erp_id, r.origin, r.digest, r.tags) for r in sent] == expected
    assert {r.origin for r in sent if not r.erp_id} == {"row 5", "row 12"}
    assert sum(left_out) == len(every) - len(sent) > 1_000
    assert len(left_out) > 1  # counted batch by batch, as the rows went by


def test_a_batch_left_out_whole_still_counts_and_numbers(tmp_path: Path, sqlite_odbc: str) -> None:
    """The first 1,500 customers are untagged: the reader's first batch (1,000 rows) is left out entirely."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 2_001):
        erp.add(erp_id, tags="hurt" if erp_id <= 1_500 else "b2b")
    connector = make_connector(make_config(erp, "sqlite://", tmp_path).source)
    left_out: list[int] = []
    sent = list(connector.records(digest_key=b"key", skip=lambda *_: False, leave_out=LeaveOut("b2b", left_out.append)))
    assert [r.origin for r in sent] == [f"row {n}" for n in range(1_501, 2_001)]
    assert left_out == [1_000, 500]


def test_without_a_skip_nothing_is_left_out(tmp_path: Path, sqlite_odbc: str) -> None:
    """Only the digest path numbers rows by position: without it the offer is declined, not half taken."""
    erp = _erp(tmp_path, 50)
    connector = make_connector(make_config(erp, "sqlite://", tmp_path).source)
    left_out: list[int] = []
    assert len(list(connector.records(digest_key=b"key", leave_out=LeaveOut("b2b", left_out.append)))) == 50
    assert left_out == []


def test_a_first_sync_counts_what_it_left_out_exactly_as_a_full_read(
    tmp_path: Path, sqlite_odbc: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dry run reads everything (it holds no lock, so it never leaves rows out); the first sync must report
    the same records, rejections and quarantine, and a second sync, with accounts live, reads everything again
    and removes the customer whose tag went."""
    erp = _erp(tmp_path, 700)
    config = make_config(erp, store_url, tmp_path, source=erp.source(query=_keyless_query()))
    engine = open_store(store_url)
    left_out: list[int] = []
    counted = Reconciler.left_out

    def spy(self: Reconciler, count: int) -> None:  # the real count, also noted here
        left_out.append(count)
        counted(self, count)

    monkeypatch.setattr(Reconciler, "left_out", spy)
    planned = run_sync(config, engine=engine, dry_run=True)
    assert left_out == []
    first = run_sync(config, engine=engine)
    assert sum(left_out) == first.rejected_by_reason["missing_tag"] > 300  # every untagged row was left out
    assert (planned.status, first.status) == ("dry_run", "quarantined")  # the two keyless rows
    for count in ("records", "created", "rejected", "rejected_by_reason", "quarantined", "rejections"):
        assert getattr(first, count) == getattr(planned, count), count
    assert first.records == 700 and first.rejected_by_reason["missing_tag"] > 300
    assert {q["origin"] for q in first.quarantine} == {"row 5", "row 12"}

    erp.set(7, tags="hurt")  # 7 % 7 == 0: tagged "b2b" until now
    left_out.clear()
    second = run_sync(config, engine=engine)
    assert left_out == []
    assert (second.records, second.removed, second.rejected) == (700, 1, first.rejected + 1)
    with engine.connect() as conn:
        status = conn.execute(sa.select(accounts.c.status).where(accounts.c.erp_id == "7")).scalar()
    engine.dispose()
    assert status == "removed"
