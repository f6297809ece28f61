"""One sync at a time per store: a lease row in `locks`, renewed while the run works.

A lease (rather than an advisory lock) works the same on SQLite, PostgreSQL and MariaDB, and a process killed
with SIGKILL stops renewing it, so its lock expires after `lease_seconds` instead of blocking forever. Expiry
is judged by the store's own clock (server-side SQL), never by a client's: a client whose clock is off by hours
neither steals a live lease nor keeps a dead one alive. While held, the lease is renewed by a background thread
too, so a step that calls no `renew()` for long (a slow ERP query) cannot let it lapse.

A lock whose holder is provably gone is taken over at once. The holder string names the host, the kernel's boot
id, the pid namespace, the pid and the process's start time: containers sharing a hostname differ in pid
namespace (their pid N is not ours), a rebooted or cloned host differs in boot id, and a pid recycled by a new
process differs in start time. Where any of these cannot be read (no /proc), only the lease's expiry frees it.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from integrator.errors import LockBusy, StoreConnectionLost
from integrator.logs import get_logger
from integrator.store.disconnect import on_new_session
from integrator.store.schema import Timestamp, locks

__all__ = ["SyncLock"]

_PROC = Path("/proc")

log = get_logger("lock")


@dataclass(frozen=True)
class _Holder:
    """Who holds a lock: "host:pid:nonce:boot=…:pidns=…:start=…" (the nonce tells two locks of a process apart)."""

    host: str
    pid: int
    boot: str = ""
    pidns: str = ""
    start: str = ""

    @classmethod
    def parse(cls, holder: str) -> _Holder | None:
        """The parts of a holder string; None when it is not one (an older version's "host:pid:nonce" parses,
        with the rest empty, so it is never taken over before its lease ends)."""
        host, _, tail = holder.partition(":")
        pid, _, tail = tail.partition(":")
        if not pid.isdigit() or int(pid) <= 0:
            return None
        fields = dict(part.partition("=")[::2] for part in tail.split(":")[1:])
        return cls(host, int(pid), fields.get("boot", ""), fields.get("pidns", ""), fields.get("start", ""))


@functools.cache
def _machine() -> tuple[str, str]:
    """This kernel's boot id and this process's pid namespace, or empty strings where /proc cannot tell. The pid
    namespace only counts when /proc is this namespace's own (/proc/self is our pid), so /proc/PID means our PID."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        if os.readlink(_PROC / "self") != str(os.getpid()):
            return boot, ""
        namespace = os.readlink(_PROC / "self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return "", ""
    return boot, namespace.partition("[")[2].rstrip("]")


def _stat(pid: int) -> tuple[str, str]:
    """State letter and start time (clock ticks after boot) of process `pid`, from /proc/PID/stat (its name,
    field 2, may hold spaces and parentheses, so fields are counted after the last ")")."""
    fields = (_PROC / str(pid) / "stat").read_bytes().rpartition(b")")[2].split()
    return fields[0].decode(), fields[19].decode()


def _here() -> _Holder:
    """This process as a holder."""
    boot, pidns = _machine()
    try:
        start = _stat(os.getpid())[1] if pidns else ""
    except (OSError, IndexError):
        start = ""
    return _Holder(socket.gethostname()[:64], os.getpid(), boot, pidns, start)  # 64: the holder fits its column


def _holder_string(nonce: int) -> str:
    me = _here()
    return f"{me.host}:{me.pid}:{nonce}:boot={me.boot}:pidns={me.pidns}:start={me.start}"


def _running(pid: int, start: str) -> bool:
    """Whether process `pid` of our pid namespace still runs as the process that started at `start` (a zombie,
    killed and not yet reaped, does not run; a pid now used by a process started later is not it)."""
    try:
        state, started = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        try:  # absent from /proc, or hidden (hidepid): ask the kernel
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, someone else's
            return True
        return True
    except (OSError, IndexError):
        return True  # cannot tell: the lease decides
    return state not in ("Z", "X") and (not start or started == start)


def _dead_here(holder: str) -> bool:
    """True when `holder` provably no longer runs: it ran on this host, in this boot, in our pid namespace, and
    its process is gone (or its pid now belongs to a later process). Anything unknown counts as alive."""
    theirs, ours = _Holder.parse(holder), _here()
    if theirs is None or not (ours.boot and ours.pidns):
        return False
    if (theirs.host, theirs.boot, theirs.pidns) != (ours.host, ours.boot, ours.pidns):
        return False
    return not _running(theirs.pid, theirs.start)


class _StoreNow(FunctionElement[Any]):
    """The store's clock as naive UTC, plus `seconds` (a bound integer): every client of a store then judges a
    lease by the same clock. Rendered per dialect below, to microseconds (SQLite: milliseconds)."""

    type = Timestamp
    inherit_cache = True
    name = "store_now"


def _store_now(seconds: int = 0) -> _StoreNow:
    return _StoreNow(sa.literal(int(seconds), sa.Integer))


@compiles(_StoreNow)
def _store_now_unsupported(element: _StoreNow, compiler: Any, **kw: Any) -> str:
    raise sa.exc.CompileError(f"the lock has no clock for the {compiler.dialect.name} store")


@compiles(_StoreNow, "sqlite")
def _store_now_sqlite(element: _StoreNow, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as text "YYYY-MM-DD HH:MM:SS.ffffff"; %f gives "SS.SSS", so pad it.
    seconds = compiler.process(element.clauses, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', {seconds} || ' seconds') || '000')"


@compiles(_StoreNow, "postgresql")
def _store_now_postgresql(element: _StoreNow, compiler: Any, **kw: Any) -> str:
    # The column is `timestamp without time zone` in UTC; now() alone would follow the session's TimeZone.
    seconds = compiler.process(element.clauses, **kw)
    return f"(timezone('UTC', statement_timestamp()) + make_interval(secs => {seconds}))"


@compiles(_StoreNow, "mysql")
@compiles(_StoreNow, "mariadb")
def _store_now_mariadb(element: _StoreNow, compiler: Any, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(UTC_TIMESTAMP(6) + INTERVAL {seconds} SECOND)"


class SyncLock:
    """`with SyncLock(engine, ...):` holds the store's sync lock; `renew()` extends the lease."""

    def __init__(
        self, engine: Engine, *, name: str = "sync", lease_seconds: int = 300, wait_seconds: float = 0
    ) -> None:
        self.engine = engine
        self.name = name
        self.lease = timedelta(seconds=lease_seconds)
        self._lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.holder = _holder_string(time.monotonic_ns())
        self._renewed = 0.0
        self._stop: threading.Event | None = None
        self._lost: LockBusy | None = None

    def _try_acquire(self) -> bool:
        now, until = _store_now(), _store_now(self._lease_seconds)
        with self.engine.begin() as conn:
            taken = conn.execute(
                locks.update()
                .where(locks.c.name == self.name, locks.c.expires_at < now)
                .values(holder=self.holder, acquired_at=now, expires_at=until)
            ).rowcount
            if taken:
                return True
            holder = conn.execute(sa.select(locks.c.holder).where(locks.c.name == self.name)).scalar()
            if holder is not None and _dead_here(holder):
                taken = conn.execute(
                    locks.update()
                    .where(locks.c.name == self.name, locks.c.holder == holder)
                    .values(holder=self.holder, acquired_at=now, expires_at=until)
                ).rowcount
                if taken:
                    return True
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    locks.insert().values(name=self.name, holder=self.holder, acquired_at=now, expires_at=until)
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
        extend = (
            locks.update()
            .where(locks.c.name == self.name, locks.c.holder == self.holder)
            .values(expires_at=_store_now(self._lease_seconds))
        )
        # A session lost under the renewal says nothing of the lease: it is renewed on a new one.
        kept = on_new_session(self.engine, "the lock renewal", lambda conn: conn.execute(extend).rowcount)
        if not kept:
            raise LockBusy("this sync's lock was taken over by another process (lease expired); stopping")
        self._renewed = time.monotonic()

    def release(self) -> None:
        """Give the lock back."""
        if self._stop is not None:
            self._stop.set()
        release = locks.delete().where(locks.c.name == self.name, locks.c.holder == self.holder)
        try:
            on_new_session(self.engine, "the lock release", lambda conn: conn.execute(release))
        except StoreConnectionLost as exc:  # no longer renewed, the lease ends by itself: the run's outcome stands
            log.warning("lock_not_released", lock=self.name, error=str(exc), lease_seconds=self._lease_seconds)

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
