"""A sync's apply on SQLite leaves WAL checkpoints to a thread of its own (`integrator.store.wal`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from integrator.store.db import open_store
from integrator.store.wal import BackgroundCheckpoints


def _wait_for(condition, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_commits_leave_the_wal_to_the_thread_which_checkpoints_when_kicked(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = open_store(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE filler (n INTEGER PRIMARY KEY, text TEXT)")
        conn.commit()
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all()
        before = path.stat().st_size
        with BackgroundCheckpoints(conn) as wal:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
                " INSERT INTO filler (text) SELECT hex(randomblob(500)) FROM n"
            )
            conn.commit()
            # Committed into the WAL only: without the automatic checkpoint the database file has not grown.
            assert path.stat().st_size == before
            assert Path(f"{path}-wal").stat().st_size > 10_000_000
            wal.kick()
            assert _wait_for(lambda: path.stat().st_size > before + 10_000_000)
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert conn.execute(sa.text("SELECT count(*) FROM filler")).scalar() == 20000
    assert not [t for t in threading.enumerate() if t.name == "wal-checkpoints"]
    engine.dispose()


def test_an_apply_failing_inside_keeps_its_transaction_uncommitted(tmp_path: Path) -> None:
    """An exception out of the apply (Ctrl-C in the middle of a batch) must leave the batch in flight to the
    rollback: closing the checkpoints restores the setting without committing anything."""
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE filler (n INTEGER PRIMARY KEY)")
        conn.commit()
        with pytest.raises(KeyboardInterrupt), BackgroundCheckpoints(conn):
            conn.exec_driver_sql("INSERT INTO filler (n) VALUES (1)")
            raise KeyboardInterrupt
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        conn.rollback()
        assert conn.exec_driver_sql("SELECT count(*) FROM filler").scalar() == 0
    engine.dispose()


def test_other_stores_and_memory_databases_are_left_alone() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn, BackgroundCheckpoints(conn) as wal:
        wal.kick()
        assert not [t for t in threading.enumerate() if t.name == "wal-checkpoints"]
