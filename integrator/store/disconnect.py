"""A store connection lost under the work: a server restart, a failover, a session ended from outside.

SQLAlchemy's disconnect detection tells it apart from every other database error (the error says
`connection_invalidated`). Here it becomes `StoreConnectionLost`, naming the step it interrupted, instead of
surfacing as a driver error, or as a second, misleading one from a statement that ran on a reconnected session.

Short bookkeeping transactions (a lock's lease, a run's row, a mail's status) are redone once on a new session.
The pool checks a connection before handing it out (`pool_pre_ping`), so sessions that died while idle in the pool
are replaced unseen; only a session lost while checked out, in the middle of the work, comes here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.errors import StoreConnectionLost
from integrator.logs import get_logger

__all__ = ["HeldSession", "is_disconnect", "lost", "on_new_session", "reported_as"]

log = get_logger("store")

T = TypeVar("T")


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` is a statement that failed because the store's connection was lost."""
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def lost(step: str, exc: BaseException) -> StoreConnectionLost:
    """`StoreConnectionLost` for `step`, with the first line of the driver's error."""
    return StoreConnectionLost(step, _first_line(exc))


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"[:300]


@contextlib.contextmanager
def reported_as(step: str) -> Iterator[None]:
    """A lost connection under this block (or decorated function) is raised as `StoreConnectionLost(step)`."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise lost(step, exc) from exc
        raise


def on_new_session(engine: Engine, step: str, work: Callable[[sa.Connection], T]) -> T:
    """`work(conn)` in one transaction; when the connection is lost under it, once more on a new session, and a
    second loss raises `StoreConnectionLost(step)`. `work` must be safe to run twice: a commit whose answer was
    lost may have been applied."""

    def attempt() -> T:
        with engine.begin() as conn:
            return work(conn)

    return _twice(step, attempt)


def _twice(step: str, attempt: Callable[[], T], forget: Callable[[], None] | None = None) -> T:
    """`attempt()`; when the store's connection was lost under it, `forget()` the lost one and attempt once more, a
    second loss raising `StoreConnectionLost(step)`."""
    try:
        return attempt()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("store_connection_lost", step=step, error=_first_line(exc), retrying="on a new session")
    if forget is not None:
        forget()
    with reported_as(step):
        return attempt()


class HeldSession:
    """One connection kept for a long run of short transactions (a delivery makes a few per mail), each begun and
    committed on it, so none pays the pool's checkout, ping and reset. The guarantee is `on_new_session`'s: a
    connection lost under a transaction (or while idle between two, found at the next one's first statement) is
    replaced and the work done once more; a second loss in a row raises `StoreConnectionLost(step)`."""

    idle_seconds = 5.0
    """A connection left idle longer (a slow send, a paced wait) goes back to the pool, which checks it before
    handing one out again: a session the server ended meanwhile is then replaced unseen, as between two
    `on_new_session` calls, instead of costing the work its one retry."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None
        self._used = 0.0

    def run(self, step: str, work: Callable[[sa.Connection], T]) -> T:
        """`work(conn)` in one transaction on the held connection; `work` must be safe to run twice."""
        return _twice(step, lambda: self._once(work), self.close)

    def _once(self, work: Callable[[sa.Connection], T]) -> T:
        if self._conn is None or self._conn.invalidated or time.monotonic() - self._used > self.idle_seconds:
            self.close()
            self._conn = self.engine.connect()
        try:
            with self._conn.begin():
                return work(self._conn)
        finally:
            self._used = time.monotonic()

    def close(self) -> None:
        """Give the connection back to the pool (a lost one is discarded there)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.close()
