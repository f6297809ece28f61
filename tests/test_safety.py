"""Safety details not covered by the guard, lock, fault and quarantine suites: a quarantined record's retry
count, and a sync refused by the lock leaving the process as it found it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support.erp import SqliteErp, make_config

from integrator.clock import utcnow
from integrator.errors import LockBusy
from integrator.store.db import open_store
from integrator.store.lock import SyncLock
from integrator.store.schema import accounts, quarantine, runs
from integrator.sync import run_sync


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 6):
        erp.add(erp_id)
    return erp


def live_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(accounts.c.status != "removed")).scalar_one()


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


def test_a_refused_lock_leaves_the_process_as_it_found_it(erp: SqliteErp, tmp_path: Path) -> None:
    """A sync stopped by the lock leaves the garbage collector on (the daemon lives on after it)."""
    import gc

    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    engine = open_store(config.store.url)
    with SyncLock(engine, lease_seconds=60), pytest.raises(LockBusy):
        run_sync(config, engine=engine)
    assert gc.isenabled()


def test_a_run_left_running_by_a_crash_is_marked_interrupted(erp: SqliteErp, tmp_path: Path) -> None:
    """The next sync (holding the lock, so nothing else runs) marks a run a crash left "running" interrupted."""
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    engine = open_store(config.store.url)
    with engine.begin() as conn:
        conn.execute(runs.insert().values(started_at=utcnow(), status="running", trigger="cli", dry_run=False))
    result = run_sync(config, engine=engine)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(runs.c.id, runs.c.status)).all())
    assert statuses == {1: "interrupted", result.run_id: "ok"}
