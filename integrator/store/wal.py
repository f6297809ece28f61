"""SQLite's WAL checkpoints during a large apply, on a thread of their own beside the writes."""

from __future__ import annotations

import threading
from types import TracebackType

import sqlalchemy as sa

from integrator.logs import get_logger

__all__ = ["BackgroundCheckpoints"]

log = get_logger("store")

_DEFAULT_AUTOCHECKPOINT = 1000
"""SQLite's own `wal_autocheckpoint` (pages), which the store otherwise keeps."""


class BackgroundCheckpoints:
    """While open, the run's SQLite connection does not checkpoint at its commits (`wal_autocheckpoint = 0`);
    each `kick()` (after a commit) has a thread copy the committed WAL frames into the database file instead, with
    a PASSIVE checkpoint on a connection of its own, which neither waits for the writer nor blocks it. On two cores
    that copying, and its fsync, runs beside the next batch's inserts instead of inside the commit the apply waits
    for. A checkpoint the thread cannot make is left to the next one, or to the store's close. On any other store,
    or an in-memory SQLite database, it does nothing."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        url = conn.engine.url
        self._on = conn.dialect.name == "sqlite" and url.database not in (None, "", ":memory:")
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundCheckpoints:
        if self._on:
            self._conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
            self._conn.commit()
            self._thread = threading.Thread(target=self._checkpoints, name="wal-checkpoints", daemon=True)
            self._thread.start()
        return self

    def kick(self) -> None:
        """Ask for a checkpoint of what is committed now (the thread makes one at a time; kicks meanwhile merge)."""
        if self._thread is not None:
            self._wake.set()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._thread = None
        try:
            self._conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {_DEFAULT_AUTOCHECKPOINT}")
            if kind is None:  # never commit for an apply that is failing: its batch in flight must roll back whole
                self._conn.commit()
        except sa.exc.SQLAlchemyError:  # the session is gone or must roll back first: not this setting's to report
            pass

    def _checkpoints(self) -> None:
        try:
            with self._conn.engine.connect() as own:
                while True:
                    self._wake.wait()
                    self._wake.clear()
                    if self._stopping:
                        return
                    own.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
                    own.commit()
        except sa.exc.DBAPIError as exc:  # an optimisation only: the store's close checkpoints what is left
            log.warning("wal_checkpoint_failed", error=type(exc.orig).__name__)
