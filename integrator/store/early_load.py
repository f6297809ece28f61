"""A first sync's bulk load begun while its source is still read, so the store inserts on the core the apply
would otherwise leave idle.

The bulk load (`Applier._load_in_bulk`) runs in one PostgreSQL backend: on its own, after the read, it keeps one
core busy while the sync waits. Begun once the staging holds `BULK_LOAD_MIN` creates of an empty store, it drops
the tables' indexes and keys, and from then on each staging write is followed by the insert of the rows it
wrote, sent from a thread: the sync judges the next rows while the store inserts these. The staging and the
load share the run's connection and transaction; the next write waits for the insert before it. Once the read
is over, the creates that lost their login to a later row are taken back out (`Applier.unload`), and the apply
only builds the indexes and keys and commits: the tables stay locked, and the store empty to everyone else, until
then.

A reader of the tables holding a lock makes the begin give up after its lock timeout, and the run goes on as
without it. A store that refuses an insert rolls the transaction back with the rows staged since the begin:
`LoadAbandoned` then makes the run read again, without this, so that the batches quarantine the row at fault.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from integrator.logs import get_logger
from integrator.store import apply
from integrator.store.apply import Applier, LoadAbandoned, loads_in_bulk
from integrator.store.disconnect import is_disconnect
from integrator.store.ledger import StoreLookups

__all__ = ["LoadWhileReading"]

log = get_logger("sync")


class LoadWhileReading:
    """The staging's companion (`Staging.loader`): begins the bulk load when it is due and loads each write."""

    def __init__(self, applier: Applier, lookups: StoreLookups) -> None:
        self._applier = applier
        self._lookups = lookups
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._declined = False

    @property
    def begun(self) -> bool:
        """Whether the load began (and so the run's transaction holds inserted accounts)."""
        return self._applier.loading

    def flushed(self, staged: int) -> None:
        """The staging wrote its rows up to `staged`: insert them in the background, once the load is begun."""
        if not self.begun and (self._declined or not self._begin()):
            return
        self._worker = threading.Thread(target=self._load, args=(staged,), name="early-load", daemon=True)
        self._worker.start()

    def wait(self) -> None:
        """Wait for the insert in flight; raise `LoadAbandoned` if the store refused it, or the lost connection."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.join()
        error, self._error = self._error, None
        if error is None:
            return
        if isinstance(error, sa.exc.DBAPIError) and not (error.connection_invalidated or is_disconnect(error)):
            raise LoadAbandoned(f"the store refused the first load, begun while the source was read: {error.orig}")
        raise error

    def stop(self) -> None:
        """Wait for the insert in flight and forget its outcome: the run is failing for another reason, and its
        connection must be free before it is rolled back."""
        if self._worker is not None:
            self._worker.join()
        self._worker, self._error = None, None

    def _begin(self) -> bool:
        applier = self._applier
        if applier.staging.creates < apply.BULK_LOAD_MIN:
            return False
        self._declined = True  # asked once: a store that was not empty, or a lock held, stays so for this run
        if not loads_in_bulk(applier.conn, applier.staging.creates):
            return False
        savepoint = applier.conn.begin_nested()
        try:
            applier.begin_bulk_load()
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated or is_disconnect(exc):
                raise
            savepoint.rollback()
            applier.loading = False
            log.info("early_load_declined", reason=str(exc.orig).strip().splitlines()[0])
            return False
        savepoint.commit()
        self._lookups.store_is_empty()  # it stays so until this run commits: asking another session would wait
        return True

    def _load(self, staged: int) -> None:
        try:
            self._applier.load(staged)
        except BaseException as exc:  # noqa: BLE001 - handed to the run's thread by `wait`
            self._error = exc
