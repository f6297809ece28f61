"""Safety under faults: one sync at a time, a source that dies mid-read, an unreachable store, a value the
store rejects — each ends clearly, and none removes an account."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.erp import SqliteErp, make_config

from integrator.clock import utcnow
from integrator.errors import LockBusy, StoreError
from integrator.store.db import open_store
from integrator.store.lock import SyncLock
from integrator.store.schema import accounts, locks, quarantine, runs
from integrator.sync import run_sync
from tests.conftest import PG_HOST, PG_PORT, require_odbc_driver


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 6):
        erp.add(erp_id)
    return erp


def live_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(accounts.c.status != "removed")).scalar_one()


def test_second_sync_is_refused_while_one_runs(erp: SqliteErp, tmp_path: Path) -> None:
    """A sync that finds the lock held stops with LockBusy naming the holder, and writes no run."""
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    engine = open_store(config.store.url)
    with SyncLock(engine, lease_seconds=60), pytest.raises(LockBusy, match="another sync is running"):
        run_sync(config, engine=engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 0
    assert run_sync(config, engine=engine).created == 5  # released: the next one runs


def test_second_sync_waits_for_the_first_when_configured(erp: SqliteErp, tmp_path: Path) -> None:
    """With [lock] wait_seconds, a second sync waits for the lock instead of giving up."""
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, lock={"wait_seconds": 20})
    engine = open_store(config.store.url)
    holder = SyncLock(engine, lease_seconds=60)
    holder.acquire()
    releaser = threading.Timer(1.0, holder.release)
    releaser.start()
    started = time.monotonic()
    result = run_sync(config, engine=engine)
    releaser.join()
    assert result.created == 5 and time.monotonic() - started >= 0.9


def test_expired_lock_of_another_host_is_taken_over(erp: SqliteErp, tmp_path: Path) -> None:
    """A lock whose lease ran out (its holder died on another machine) no longer blocks anyone."""
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    engine = open_store(config.store.url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(locks.insert().values(name="sync", holder="elsewhere:1:1", acquired_at=now - timedelta(hours=1),
                                           expires_at=now - timedelta(minutes=1)))  # fmt: skip
    assert run_sync(config, engine=engine).status == "ok"
    with engine.begin() as conn:
        conn.execute(locks.insert().values(name="sync", holder="elsewhere:1:1", acquired_at=now,
                                           expires_at=now + timedelta(minutes=5)))  # fmt: skip
    with pytest.raises(LockBusy, match="elsewhere:1:1"):
        run_sync(config, engine=engine)


def test_store_unreachable_is_a_clear_error_without_the_password(erp: SqliteErp, tmp_path: Path) -> None:
    """A store URL pointing at a closed port fails with StoreError naming the store, never its password."""
    url = "postgresql://b2b:s3cret-Haslo@127.0.0.1:9/b2b"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "127.0.0.1:9" in message and "s3cret-Haslo" not in message


def test_source_dying_mid_read_fails_the_run_and_removes_nobody(pg_database: str, tmp_path: Path) -> None:
    """The ERP backend terminated while the sync streams it (psqlODBC): status failed, every account kept."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}", autocommit=True) as db:
        db.execute("CREATE TABLE customers (erp_id int PRIMARY KEY, name text, email text, tags text)")
        db.execute("INSERT INTO customers SELECT i, 'Firma ' || i, 'k' || i || '@example.pl', 'b2b' "
                   "FROM generate_series(1, 3000) i")  # fmt: skip
    source = {
        "kind": "odbc",
        "connection_string": f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};"
        f"Database={pg_database};Uid=postgres;",
        "query": "SELECT erp_id, name, email, tags FROM customers ORDER BY erp_id",
        "fetch_size": 100,
    }
    config = make_config(SqliteErp(tmp_path / "unused.db"), f"sqlite:///{tmp_path / 'store.db'}", tmp_path,
                         source=source)  # fmt: skip
    engine = open_store(config.store.url)
    assert run_sync(config, engine=engine).created == 3000
    # The backend kills itself on reaching customer 2000: a connection lost half-way through the read.
    dying = dict(source, query="SELECT erp_id, name, email, tags, CASE WHEN erp_id = 2000 THEN "
                 "pg_terminate_backend(pg_backend_pid()) END AS boom FROM customers ORDER BY erp_id")  # fmt: skip
    config = make_config(SqliteErp(tmp_path / "unused.db"), config.store.url, tmp_path, source=dying)
    result = run_sync(config, engine=engine)
    assert result.status == "failed" and result.exit_code == 1
    assert "connection" in (result.message or "").lower()
    assert (result.removed, live_count(engine)) == (0, 3000)


def test_value_the_store_rejects_is_quarantined_and_retried(pg_url: str, erp: SqliteErp, tmp_path: Path) -> None:
    """A field longer than its column (PostgreSQL enforces it) quarantines that record; the rest apply."""
    config = make_config(erp, pg_url, tmp_path)
    engine = open_store(pg_url)
    erp.set(3, symbol="S" * 300)  # accounts.symbol is VARCHAR(128)
    result = run_sync(config, engine=engine)
    assert (result.status, result.exit_code, result.created, result.quarantined) == ("quarantined", 3, 4, 1)
    with engine.connect() as conn:
        row = conn.execute(sa.select(quarantine)).mappings().one()
    assert row["erp_id"] == "3" and "could not apply" in row["error"]
    assert run_sync(config, engine=engine).status == "quarantined"  # retried, still too long
    with engine.connect() as conn:
        assert conn.execute(sa.select(quarantine.c.attempts)).scalar() == 2
    erp.set(3, symbol="S-3")
    fixed = run_sync(config, engine=engine)
    assert (fixed.status, fixed.created) == ("ok", 1)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar() == 0


def test_rule_that_raises_quarantines_only_that_record(
    erp: SqliteErp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consultant rule whose pattern cannot handle a value quarantines that one record; the run goes on."""
    from rules.engine import RuleEngine

    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    engine = open_store(config.store.url)
    assert run_sync(config, engine=engine).created == 5

    class Boom:
        name = "rule:boom"

        def __call__(self, record: Any) -> str | None:
            if record.erp_id == "2":
                raise ValueError("cannot judge this one")
            return None

    original = RuleEngine.__init__

    def with_boom(self: RuleEngine, rules: Any) -> None:
        original(self, [*rules, Boom()])

    erp.set(2, phone="1")  # a changed row: judged again, not skipped by its digest
    erp.set(4, tags="")
    monkeypatch.setattr(RuleEngine, "__init__", with_boom)
    result = run_sync(config, engine=engine)
    assert (result.status, result.quarantined, result.removed) == ("quarantined", 1, 1)
    assert "rule:boom" in result.quarantine[0]["error"] and live_count(engine) == 4


def test_refused_run_records_what_it_refused(erp: SqliteErp, tmp_path: Path) -> None:
    """A run refused by the deletion guard is in the history with every refused removal and its reason."""
    from integrator.store.queries import actions_of_run

    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, safety={"max_removals": 1})
    engine = open_store(config.store.url)
    run_sync(config, engine=engine)
    erp.set(1, tags="")
    erp.delete(2)
    refused = run_sync(config, engine=engine)
    assert (refused.status, refused.exit_code) == ("refused", 4)
    with engine.connect() as conn:
        status = conn.execute(sa.select(runs.c.status).where(runs.c.id == refused.run_id)).scalar()
        actions = list(actions_of_run(conn, refused.run_id))
    assert status == "refused"
    assert {(a["erp_id"], a["action"]) for a in actions} == {("1", "refused"), ("2", "refused")}
    reasons = {a["erp_id"]: a["reason"] for a in actions}
    assert "missing_tag" in reasons["1"] and "not_in_source" in reasons["2"]
    assert live_count(engine) == 5


def test_a_refused_lock_leaves_the_process_as_it_found_it(erp: SqliteErp, tmp_path: Path) -> None:
    """A sync stopped by the lock leaves the garbage collector on (the daemon lives on after it)."""
    import gc

    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    engine = open_store(config.store.url)
    with SyncLock(engine, lease_seconds=60), pytest.raises(LockBusy):
        run_sync(config, engine=engine)
    assert gc.isenabled()
