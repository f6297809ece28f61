"""One sync at a time per store: a lease row in `locks`, renewed while the run works.

A lease (rather than an advisory lock) works the same on SQLite, PostgreSQL and MariaDB, and a process killed
with SIGKILL stops renewing it, so its lock expires after `lease_seconds` instead of blocking forever. A lock
whose holder ran on this very host and no longer exists is taken over at once. While held, the lease is renewed
by a background thread too, so a step that calls no `renew()` for long (a slow ERP query) cannot let it lapse.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.errors import LockBusy
from integrator.store.schema import locks

__all__ = ["SyncLock"]


def _dead_here(holder: str) -> bool:
    """True when `holder` ("host:pid:…") names a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class SyncLock:
    """`with SyncLock(engine, ...):` holds the store's sync lock; `renew()` extends the lease."""

    def __init__(
        self, engine: Engine, *, name: str = "sync", lease_seconds: int = 300, wait_seconds: float = 0
    ) -> None:
        self.engine = engine
        self.name = name
        self.lease = timedelta(seconds=lease_seconds)
        self.wait_seconds = wait_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns()}"
        self._renewed = 0.0
        self._stop: threading.Event | None = None
        self._lost: LockBusy | None = None

    def _try_acquire(self) -> bool:
        now = utcnow()
        with self.engine.begin() as conn:
            taken = conn.execute(
                locks.update()
                .where(locks.c.name == self.name, locks.c.expires_at < now)
                .values(holder=self.holder, acquired_at=now, expires_at=now + self.lease)
            ).rowcount
            if taken:
                return True
            holder = conn.execute(sa.select(locks.c.holder).where(locks.c.name == self.name)).scalar()
            if holder is not None and _dead_here(holder):
                taken = conn.execute(
                    locks.update()
                    .where(locks.c.name == self.name, locks.c.holder == holder)
                    .values(holder=self.holder, acquired_at=now, expires_at=now + self.lease)
                ).rowcount
                if taken:
                    return True
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    locks.insert().values(
                        name=self.name, holder=self.holder, acquired_at=now, expires_at=now + self.lease
                    )
                )
            return True
        except sa.exc.IntegrityError:
            return False

    def acquire(self) -> None:
        """Take the lock, waiting up to `wait_seconds`; raise `LockBusy` naming the holder otherwise."""
        deadline = time.monotonic() + self.wait_seconds
        while not self._try_acquire():
            if time.monotonic() >= deadline:
                with self.engine.connect() as conn:
                    row = conn.execute(sa.select(locks).where(locks.c.name == self.name)).first()
                detail = (
                    f" (held by {row.holder} since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC, lease until "
                    f"{row.expires_at:%H:%M:%S} UTC)"
                    if row
                    else ""
                )
                raise LockBusy(f"another sync is running on this store{detail}; try again later")
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        self._renewed = time.monotonic()
        self._keep_alive()

    def _keep_alive(self) -> None:
        """Renew the lease every few seconds from a daemon thread until `release()` (or the lease is lost)."""
        stop = self._stop = threading.Event()
        self._lost = None
        interval = min(10.0, self.lease.total_seconds() / 4)

        def keep() -> None:
            while not stop.wait(interval):
                try:
                    self._extend()
                except LockBusy as exc:
                    self._lost = exc  # the holder's next renew() raises it
                    return
                except Exception:  # noqa: BLE001 - the store busy or briefly away: try again next time
                    continue

        threading.Thread(target=keep, name=f"lease-{self.name}", daemon=True).start()

    def renew(self, force: bool = False) -> None:
        """Extend the lease; cheap to call often (it writes at most every few seconds). Raises `LockBusy` once
        the lease was lost to another process."""
        if self._lost is not None:
            raise self._lost
        if not force and time.monotonic() - self._renewed < min(10.0, self.lease.total_seconds() / 4):
            return
        self._extend()

    def _extend(self) -> None:
        with self.engine.begin() as conn:
            kept = conn.execute(
                locks.update()
                .where(locks.c.name == self.name, locks.c.holder == self.holder)
                .values(expires_at=utcnow() + self.lease)
            ).rowcount
        if not kept:
            raise LockBusy("this sync's lock was taken over by another process (lease expired); stopping")
        self._renewed = time.monotonic()

    def release(self) -> None:
        """Give the lock back."""
        if self._stop is not None:
            self._stop.set()
        with self.engine.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == self.name, locks.c.holder == self.holder))

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
