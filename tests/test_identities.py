"""New identity ids: random version 4 UUIDs, never reused, handed out in ascending order within a run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.erp import SqliteErp, make_config

from integrator.store.db import open_store
from integrator.store.identities import IdMinter, sorted_identity_ids
from integrator.store.schema import account_events, accounts, outbox
from integrator.sync import run_sync


def _is_random_uuid(text: str) -> bool:
    value = uuid.UUID(text)
    return str(value) == text and value.version == 4 and value.variant == uuid.RFC_4122


def test_minted_ids_are_distinct_v4_uuids_in_ascending_order_across_chunks() -> None:
    chunks = list(sorted_identity_ids(2_500, chunk=1_000))
    assert [len(chunk) for chunk in chunks] == [1_000, 1_000, 500]
    ids = [i for chunk in chunks for i in chunk]
    assert all(map(_is_random_uuid, ids))
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    # Random, not counted: the first hex digits spread over the whole range.
    assert {i[0] for i in ids} == set("0123456789abcdef")
    assert {i[14] for i in ids} == {"4"} and {i[19] for i in ids} == set("89ab")  # version; the variant's 2 bits
    assert list(sorted_identity_ids(0)) == []


def test_chunks_cut_through_the_first_byte_buckets_keep_the_ids_ascending() -> None:
    """The ids are sorted bucket by bucket (by first byte): chunk edges fall inside buckets, and one chunk may
    span many of them."""
    for count, chunk in ((20_000, 777), (3_000, 5_000), (1, 10)):
        chunks = list(sorted_identity_ids(count, chunk=chunk))
        ids = [i for part in chunks for i in part]
        assert [len(part) for part in chunks[:-1]] == [chunk] * (len(chunks) - 1)
        assert len(ids) == count and len(set(ids)) == count
        assert ids == sorted(ids)


def test_the_minting_thread_hands_out_prepared_chunks_in_order_and_raises_its_errors() -> None:
    minter = IdMinter(2_600, lambda first, ids: [(first + n, i) for n, i in enumerate(ids)], chunk=1_000)
    chunks = [minter.next() for _ in range(3)]
    minter.close()
    assert [(first, count) for first, count, _ in chunks] == [(1, 1_000), (1_001, 1_000), (2_001, 600)]
    rows = [row for _, _, prepared in chunks for row in prepared]
    assert [number for number, _ in rows] == list(range(1, 2_601))
    ids = [i for _, i in rows]
    assert ids == sorted(ids) and len(set(ids)) == 2_600 and all(map(_is_random_uuid, ids))

    def broken(first: int, ids: list[str]) -> None:
        raise ValueError("cannot prepare")

    failing = IdMinter(10, broken)
    with pytest.raises(ValueError, match="cannot prepare"):
        failing.next()
    failing.close()


def test_a_minter_nobody_asks_stops_on_close() -> None:
    minter = IdMinter(400_000, lambda first, ids: ids, chunk=1_000)
    minter.close()  # returns once the thread is gone: a refused plan leaves no minting behind
    assert not minter._thread.is_alive()


def test_sync_hands_out_new_ids_in_staging_order(tmp_path: Path, sqlite_odbc: str, store_url: str) -> None:
    """Creates spread over several apply batches get ascending ids; a re-add's new id is fresh again."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 251):
        erp.add(erp_id)
    config = make_config(erp, store_url, tmp_path, store={"url": store_url, "batch_size": 60})
    engine = open_store(store_url)
    first = run_sync(config, engine=engine)
    assert (first.status, first.created) == ("ok", 250)

    def ids_by_erp_id() -> dict[int, list[str]]:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(accounts.c.erp_id, accounts.c.id).order_by(accounts.c.created_at)).all()
        found: dict[int, list[str]] = {}
        for erp_id, account_id in rows:
            found.setdefault(int(erp_id), []).append(account_id)
        return found

    created = [ids[0] for _, ids in sorted(ids_by_erp_id().items())]
    assert all(map(_is_random_uuid, created)) and created == sorted(created) and len(set(created)) == 250
    with engine.connect() as conn:
        for table in (account_events, outbox):
            assert set(conn.execute(sa.select(table.c.account_id)).scalars()) == set(created)

    erp.set(7, tags="")
    run_sync(config, engine=engine)
    erp.set(7, tags="b2b")
    again = run_sync(config, engine=engine)
    assert (again.created, again.readded) == (1, 1)
    old, new = ids_by_erp_id()[7]
    assert _is_random_uuid(new) and new != old and new not in created
