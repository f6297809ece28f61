"""One sync at a time per store: a second sync exits 4 with a clear message or waits its turn, concurrent syncs
never create anything twice, and a lock left by a killed process does not block for longer than its lease.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.crash import INTEGRATOR, integrator, integrator_json, killed, write_config
from support.erp import SqliteErp, make_config

from integrator.clock import utcnow
from integrator.errors import LockBusy
from integrator.store.db import open_store
from integrator.store.lock import SyncLock
from integrator.store.schema import accounts, locks, outbox, runs
from tests.conftest import PG_HOST, PG_PORT, require_odbc_driver


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 21):
        erp.add(erp_id)
    return erp


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def lock_row(engine: sa.Engine) -> sa.Row | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(locks).where(locks.c.name == "sync")).first()


def test_second_sync_exits_4_with_a_clear_message(erp: SqliteErp, store_url: str, tmp_path: Path) -> None:
    """While another process holds the store's lock, `integrator sync` exits 4 naming the holder, writes nothing,
    and runs normally once the lock is released."""
    config = make_config(erp, store_url, tmp_path)
    engine = open_store(store_url)
    holder = SyncLock(engine, lease_seconds=60)
    with holder:
        done = integrator(config, "sync", "--json")
    assert done.returncode == 4, done.stderr
    assert "another sync is running on this store" in done.stderr and holder.holder in done.stderr
    summary = json.loads(done.stdout)  # --json: one object even though no run started
    assert (summary["run_id"], summary["status"], summary["created"]) == (None, "refused", 0)
    assert "another sync is running on this store" in summary["message"]
    assert (count(engine, runs), count(engine, accounts)) == (0, 0)
    assert integrator_json(config, "sync")["created"] == 20


def test_second_sync_waits_up_to_wait_seconds_and_then_runs(erp: SqliteErp, tmp_path: Path) -> None:
    """With `[lock] wait_seconds`, a sync meeting a held lock waits; it runs when the holder lets go in time and
    exits 4 when the wait runs out first."""
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, lock={"wait_seconds": 30})
    engine = open_store(config.store.url)
    holder = SyncLock(engine, lease_seconds=60)
    holder.acquire()
    releaser = threading.Timer(2.0, holder.release)
    releaser.start()
    started = time.monotonic()
    summary = integrator_json(config, "sync")
    releaser.join()
    assert summary["created"] == 20 and time.monotonic() - started >= 2.0

    impatient = make_config(erp, config.store.url, tmp_path, lock={"wait_seconds": 1})
    with SyncLock(engine, lease_seconds=60):
        started = time.monotonic()
        done = integrator(impatient, "sync")
    assert done.returncode == 4 and "another sync is running" in done.stderr
    assert time.monotonic() - started >= 1.0


def test_concurrent_syncs_on_a_new_store_take_turns_and_create_everything_once(
    erp: SqliteErp, store_url: str, tmp_path: Path
) -> None:
    """Three syncs started at the same moment on a new store (each creating its schema, then waiting for the
    lock) all succeed, one after another: every customer has one account and one activation mail."""
    for erp_id in range(21, 301):
        erp.add(erp_id)
    config = make_config(erp, store_url, tmp_path, lock={"wait_seconds": 120}, store={"batch_size": 50})
    path = write_config(config)
    children = [
        subprocess.Popen([INTEGRATOR, "sync", "--config", str(path)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    codes = [child.wait(timeout=180) for child in children]
    assert codes == [0, 0, 0], [child.stderr.read()[-2000:] for child in children if child.stderr]
    engine = open_store(store_url)
    with engine.connect() as conn:
        per_customer = collections.Counter(conn.execute(sa.select(accounts.c.erp_id)).scalars())
        mails = collections.Counter(conn.execute(sa.select(outbox.c.account_id)).scalars())
        created = sorted(conn.execute(sa.select(runs.c.created)).scalars())
    assert len(per_customer) == 300 and set(per_customer.values()) == {1}
    assert len(mails) == 300 and set(mails.values()) == {1}
    assert created == [0, 0, 300]
    assert lock_row(engine) is None  # each released it


def test_lock_of_a_sync_killed_on_this_host_is_taken_over_at_once(
    erp: SqliteErp, store_url: str, tmp_path: Path
) -> None:
    """A sync SIGKILLed while holding the lock leaves its lease behind; the next sync on the same host sees the
    holder's process is gone and runs at once instead of waiting out the lease."""
    config = make_config(erp, store_url, tmp_path)
    engine = open_store(store_url)
    killed(config, "sync", crash_at="sync.before_apply:1")
    left = lock_row(engine)
    assert left is not None and left.holder.startswith(socket.gethostname() + ":")
    assert left.expires_at > utcnow()  # still within its 300 s lease
    started = time.monotonic()
    assert integrator_json(config, "sync")["created"] == 20
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_lock_of_a_sync_killed_elsewhere_expires_after_its_lease(erp: SqliteErp, tmp_path: Path) -> None:
    """A lease left by a sync killed on another machine (whose process cannot be checked from here) refuses
    syncs until `lease_seconds` have passed, then is taken over."""
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, lock={"lease_seconds": 10})
    engine = open_store(config.store.url)
    killed(config, "sync", crash_at="sync.before_apply:1")
    left = lock_row(engine)
    assert left is not None
    elsewhere = "erp-sync-02" + left.holder[left.holder.index(":") :]  # the same lease, held on another host
    with engine.begin() as conn:
        conn.execute(locks.update().where(locks.c.name == "sync").values(holder=elsewhere))
    refused = integrator(config, "sync")
    assert refused.returncode == 4 and "erp-sync-02" in refused.stderr
    time.sleep(max(0.0, (left.expires_at - utcnow()).total_seconds()) + 0.5)
    assert integrator_json(config, "sync")["created"] == 20
    assert lock_row(engine) is None


def test_a_holder_whose_lease_was_taken_over_stops_and_leaves_the_new_lock_alone(store_url: str) -> None:
    """A stalled holder whose lease ran out and was taken over gets LockBusy on its next renewal, and its
    release does not free the new holder's lock."""
    engine = open_store(store_url)
    stalled = SyncLock(engine, lease_seconds=60)
    stalled.acquire()
    stalled.renew(force=True)
    with engine.begin() as conn:  # its lease runs out (it stalled, or its host lost the network)
        conn.execute(locks.update().where(locks.c.name == "sync").values(expires_at=utcnow() - timedelta(seconds=1)))
    successor = SyncLock(engine, lease_seconds=60)
    successor.acquire()
    with pytest.raises(LockBusy, match="taken over"):
        stalled.renew(force=True)
    stalled.release()
    row = lock_row(engine)
    assert row is not None and row.holder == successor.holder
    successor.release()
    assert lock_row(engine) is None


@pytest.mark.slow
def test_sync_keeps_its_lock_through_an_erp_query_slower_than_the_lease(pg_database: str, tmp_path: Path) -> None:
    """A sync waiting on an ERP query for longer than `lease_seconds` still holds the lock: a second sync
    started meanwhile exits 4 instead of running alongside it, and the first one finishes normally."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}", autocommit=True) as db:
        db.execute("CREATE TABLE customers (erp_id int PRIMARY KEY, name text, email text, tags text)")
        db.execute("INSERT INTO customers SELECT i, 'Firma ' || i, 'k' || i || '@example.pl', 'b2b' "
                   "FROM generate_series(1, 50) i")  # fmt: skip
    slow = {
        "kind": "odbc",
        "connection_string": f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};"
        f"Database={pg_database};Uid=postgres;",
        "query": "SELECT erp_id, name, email, tags FROM customers, (SELECT pg_sleep(14)) AS pause ORDER BY erp_id",
    }
    config = make_config(SqliteErp(tmp_path / "unused.db"), f"sqlite:///{tmp_path / 'store.db'}", tmp_path,
                         source=slow, lock={"lease_seconds": 10})  # fmt: skip
    first = subprocess.Popen([INTEGRATOR, "sync", "--config", str(write_config(config))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(12)  # past the first sync's lease, while its query still runs
        second = integrator(config, "sync")
        _, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
    assert second.returncode == 4 and "another sync is running" in second.stderr, second.stderr[-2000:]
    assert first.returncode == 0, stderr[-3000:]
    engine = open_store(config.store.url)
    assert (count(engine, accounts), count(engine, outbox)) == (50, 50)


def proc_here(pid: int | None = None) -> tuple[str, str, str]:
    """This kernel's boot id, our pid namespace and the start time of `pid` (default: us), read from /proc."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    start = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rpartition(")")[2].split()[19]
    return boot, namespace, start


def hold(engine: sa.Engine, holder: str, expires_in: timedelta) -> None:
    """Leave a lease as another process would have: `holder`, expiring `expires_in` from now."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == "sync"))
        conn.execute(locks.insert().values(name="sync", holder=holder, acquired_at=now, expires_at=now + expires_in))


def taken_over(engine: sa.Engine) -> bool:
    """Whether a new sync takes the lock at once (releasing it again)."""
    lock = SyncLock(engine, lease_seconds=60)
    try:
        lock.acquire()
    except LockBusy:
        return False
    lock.release()
    return True


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "60"])
    yield child
    child.kill()
    child.wait()


def test_a_dead_holder_is_taken_over_at_once_only_from_its_own_boot_and_pid_namespace(store_url: str) -> None:
    """A lease whose process is gone is taken over before its expiry only when host, boot id and pid namespace
    are ours: in another container on this host (same hostname, other pid namespace) or before a reboot its
    pid means another process, and a holder that does not say (an older version's) waits out its lease."""
    engine = open_store(store_url)
    host, (boot, namespace, start) = socket.gethostname(), proc_here()
    child = subprocess.Popen(["true"])
    child.wait()
    dead = child.pid
    own = SyncLock(engine).holder.split(":")
    assert (own[0], own[1]) == (host, str(os.getpid()))
    assert {f"boot={boot}", f"pidns={namespace}", f"start={start}"} <= set(own)
    assert len(":".join(own)) <= locks.c.holder.type.length

    for holder in (
        f"{host}:{dead}:7:boot={boot}:pidns=4026599999:start={start}",  # another container's pid
        f"{host}:{dead}:7:boot=0e2f4a4c-0000-4000-8000-000000000000:pidns={namespace}:start={start}",  # other boot
        f"{host}:{dead}:7",  # says neither
    ):
        hold(engine, holder, timedelta(seconds=60))
        assert not taken_over(engine), holder
        assert lock_row(engine).holder == holder
    hold(engine, f"{host}:{dead}:7:boot={boot}:pidns={namespace}:start={start}", timedelta(seconds=60))
    assert taken_over(engine)


def test_a_recycled_pid_or_a_zombie_does_not_keep_a_dead_holders_lock(
    store_url: str, sleeper: subprocess.Popen[bytes]
) -> None:
    """A holder's pid now used by a later process (its start time differs) or left as an unreaped zombie no
    longer holds the lock; the process itself, alive, does."""
    engine = open_store(store_url)
    host, (boot, namespace, start) = socket.gethostname(), proc_here(sleeper.pid)
    holder = f"{host}:{sleeper.pid}:7:boot={boot}:pidns={namespace}:start="
    hold(engine, holder + start, timedelta(seconds=60))
    assert not taken_over(engine)
    hold(engine, holder + str(int(start) - 1), timedelta(seconds=60))  # the pid's earlier owner
    assert taken_over(engine)

    hold(engine, holder + start, timedelta(seconds=60))
    sleeper.kill()  # not waited for: a zombie until its parent reaps it
    deadline = time.monotonic() + 10
    while proc_state(sleeper.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc_state(sleeper.pid) == "Z"
    assert taken_over(engine)


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def in_time_zone_far_from_utc(engine: sa.Engine) -> sa.Engine:
    """`engine` with every session 13-14 hours east of UTC (PostgreSQL, MariaDB): a local now() is half a day off."""
    statement = {"postgresql": "SET TIME ZONE 'Pacific/Kiritimati'", "sqlite": None}.get(
        engine.dialect.name, "SET time_zone = '+13:00'"
    )
    if statement is not None:

        @sa.event.listens_for(engine, "connect")
        def set_zone(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute(statement)
            cursor.close()
            dbapi_connection.commit()  # type: ignore[attr-defined]

        engine.dispose()
    return engine


@pytest.mark.parametrize("skew", [timedelta(days=1), -timedelta(days=1)], ids=["ahead", "behind"])
def test_a_client_with_a_skewed_clock_neither_steals_a_live_lease_nor_keeps_a_dead_one(
    store_url: str, monkeypatch: pytest.MonkeyPatch, skew: timedelta
) -> None:
    """Leases are judged by the store's clock: a client whose own clock runs a day ahead does not take a lease
    that is still live, one a day behind takes an expired one, and the lease either writes ends `lease_seconds`
    after the store's now (in UTC, whatever the session's time zone), not a day early or late."""
    engine = in_time_zone_far_from_utc(open_store(store_url))
    elsewhere = "erp-sync-02:4242:7:boot=0e2f4a4c-0000-4000-8000-000000000000:pidns=4026531836:start=99"
    skewed = lambda: utcnow() + skew  # noqa: E731 - the module's own clock, shifted
    monkeypatch.setattr("integrator.clock.utcnow", skewed)
    monkeypatch.setattr("integrator.store.lock.utcnow", skewed, raising=False)

    hold(engine, elsewhere, timedelta(seconds=60))
    assert not taken_over(engine)
    assert lock_row(engine).holder == elsewhere

    hold(engine, elsewhere, -timedelta(seconds=5))
    lock = SyncLock(engine, lease_seconds=60)
    lock.acquire()
    try:
        lock.renew(force=True)
        row = lock_row(engine)
        assert row is not None and row.holder == lock.holder
        assert abs(row.acquired_at - utcnow()) < timedelta(seconds=10), row
        assert abs(row.expires_at - (utcnow() + timedelta(seconds=60))) < timedelta(seconds=10), row
    finally:
        lock.release()
