"""A first sync into an empty PostgreSQL store builds the indexes and primary keys of accounts, their events and
the outbox after its inserts, in one transaction (`Applier._load_in_bulk`): the store ends with the same accounts,
mails, indexes and keys as the batch by batch way, a record that fails still goes to quarantine alone, a reader holding
the tables sends the run the batch way instead of queueing behind it, and a lost session leaves the store as it
was, its indexes included. From `BULK_LOAD_MIN` creates on; lowered here so a test-sized ERP takes that way."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from support.crash import write_config
from support.erp import SqliteErp, make_config
from support.store_sessions import add_customers, before_call, end_sessions, hook

import integrator.store.apply
from integrator.cli import main
from integrator.logs import configure_logging
from integrator.store.apply import Applier
from integrator.store.db import open_store
from integrator.store.schema import account_events, accounts, outbox, quarantine
from integrator.store.staging import Staging

pytestmark = pytest.mark.postgres

CUSTOMERS = 1200
BATCH = 300
"""Four batches the batch way; one transaction the bulk way."""

INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename IN ('accounts', 'account_events', 'outbox')
ORDER BY indexname
"""

KEYS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE contype IN ('p', 'f') AND connamespace = current_schema()::regnamespace
ORDER BY 1, 2
"""


class Store:
    """An ERP of `CUSTOMERS` customers, an empty PostgreSQL store, a config file for the CLI."""

    def __init__(self, tmp: Path, pg_url: str) -> None:
        self.erp = SqliteErp(tmp / "erp.db")
        add_customers(self.erp, CUSTOMERS)
        self.path = write_config(make_config(self.erp, pg_url, tmp, store={"batch_size": BATCH}))
        self.engine = open_store(pg_url)
        self.url = pg_url

    def sync(self) -> tuple[int, dict[str, Any], str]:
        """`integrator sync --json` in this process, so the lowered threshold holds: exit code, summary, stderr."""
        done = CliRunner().invoke(main, ["sync", "--json", "--config", str(self.path)])
        configure_logging()
        assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
        return done.exit_code, json.loads(done.stdout), done.stderr

    def indexes(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(INDEXES)]

    def keys(self) -> list[tuple[str, str, str]]:
        """The primary and foreign keys of every table, as the store has them."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(KEYS)]

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    def assert_all_created(self, but: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """Every customer but `but` has one live account, one `created` event and one activation mail."""
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(accounts.c.erp_id).where(accounts.c.live_key.is_not(None))).scalars()
            assert sorted(map(int, ids)) == [n for n in range(1, CUSTOMERS + 1) if str(n) not in but]
            kinds = conn.execute(sa.select(account_events.c.kind, sa.func.count()).group_by(account_events.c.kind))
            assert dict(kinds.all()) == {"created": CUSTOMERS - len(but)}
            mails = sa.select(outbox.c.kind, sa.func.count(sa.distinct(outbox.c.account_id))).group_by(outbox.c.kind)
            assert conn.execute(mails).all() == [("activation", CUSTOMERS - len(but))]
            assert self.count(outbox) == CUSTOMERS - len(but)


@pytest.fixture
def store(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(integrator.store.apply, "BULK_LOAD_MIN", 1000)
    return Store(tmp_path, pg_url)


def _commits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return hook(monkeypatch, integrator.store.apply, "apply.before_commit", lambda: None, at=None)


def test_a_first_sync_builds_the_indexes_after_its_inserts(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction for every create; the store has the same indexes and keys as before (the primary keys
    and the foreign keys that point at them are dropped for the load too), and they work: a second sync finds
    every account by its key and changes nothing, and the keys refuse what they should."""
    indexes, keys = store.indexes(), store.keys()
    assert {name for name, _ in indexes} >= {"ux_accounts_live_login", "ux_accounts_live_key", "ix_outbox_status"}
    named = {(table, name) for table, name, _ in keys}
    assert named >= {("accounts", "accounts_pkey"), ("account_secrets", "account_secrets_account_id_fkey")}
    reached = _commits(monkeypatch)
    statements: list[str] = []
    listen = (sa.engine.Engine, "before_cursor_execute", lambda conn, cursor, sql, *_: statements.append(sql))
    sa.event.listen(*listen)
    try:
        code, summary, stderr = store.sync()
    finally:
        sa.event.remove(*listen)
    assert (code, summary["status"], summary["created"], summary["mails_queued"]) == (0, "ok", CUSTOMERS, CUSTOMERS)
    assert reached.count("apply.before_commit") == 1, "the creates were committed batch by batch"
    dropped = {sql.split()[-1] for sql in statements if "DROP CONSTRAINT" in sql}
    assert dropped == {"accounts_pkey", "account_events_pkey", "outbox_pkey", "account_secrets_account_id_fkey"}
    assert store.indexes() == indexes
    assert store.keys() == keys
    with store.engine.connect() as conn:  # the store drew the ids: random (version 4) UUIDs, each its own
        ids = conn.execute(sa.select(accounts.c.id)).scalars().all()
    assert len({uuid.UUID(i) for i in ids}) == CUSTOMERS and {uuid.UUID(i).version for i in ids} == {4}
    assert all(str(uuid.UUID(i)) == i for i in ids)
    with store.engine.connect() as conn:
        some = conn.execute(sa.select(accounts).limit(1)).mappings().one()
        with pytest.raises(sa.exc.IntegrityError, match="accounts_pkey"):
            conn.execute(accounts.insert().values({**some, "live_login": None, "live_key": None}))
        conn.rollback()
        with pytest.raises(sa.exc.IntegrityError, match="account_secrets_account_id_fkey"):
            conn.exec_driver_sql(
                "INSERT INTO account_secrets (account_id, kind, secret_hash, created_at, expires_at)"
                " VALUES ('no-such-account', 'activation_link', 'x', now(), now())"
            )
    store.assert_all_created()
    code, again, stderr = store.sync()
    assert (code, again["created"], again["updated"], again["unchanged"]) == (0, 0, 0, CUSTOMERS), stderr[-2000:]


def test_the_batch_way_below_the_threshold(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer creates than `BULK_LOAD_MIN`: a commit per batch, as on every other store."""
    monkeypatch.setattr(integrator.store.apply, "BULK_LOAD_MIN", CUSTOMERS + 1)
    reached = _commits(monkeypatch)
    code, summary, _ = store.sync()
    assert (code, summary["created"]) == (0, CUSTOMERS)
    assert reached.count("apply.before_commit") == CUSTOMERS // BATCH
    store.assert_all_created()


def test_a_record_the_store_rejects_is_quarantined_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symbol too long for its column fails the bulk load: it rolls back whole (its dropped indexes come back),
    and the batches then create everyone else and quarantine that one customer."""
    store.erp.set(700, symbol="S" * 200)
    indexes, keys = store.indexes(), store.keys()
    loads = before_call(monkeypatch, Applier, "_load_in_bulk", lambda: None, at=None)
    code, summary, stderr = store.sync()
    assert (code, summary["status"], summary["created"], summary["quarantined"]) == (3, "quarantined",
                                                                                     CUSTOMERS - 1, 1)  # fmt: skip
    assert loads == [1]
    assert store.indexes() == indexes and store.keys() == keys
    store.assert_all_created(but={"700"})
    with store.engine.connect() as conn:
        [(erp_id, error)] = conn.execute(sa.select(quarantine.c.erp_id, quarantine.c.error)).all()
    assert erp_id == "700" and "too long" in error


def test_a_reader_of_the_tables_sends_the_sync_the_batch_way(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session in a transaction that read `accounts` (a portal request, a report) holds a lock the index drop
    would wait for, and every later reader would queue behind that wait: the load gives up after its lock
    timeout and the batches create the accounts while the reader goes on."""
    reader = store.engine.connect()
    reader.execute(sa.select(sa.func.count()).select_from(accounts))  # its transaction stays open
    loads = before_call(monkeypatch, Applier, "_load_in_bulk", lambda: None, at=None)
    reached = _commits(monkeypatch)
    try:
        code, summary, stderr = store.sync()
        assert reader.in_transaction()  # held its lock all along, and reads on
        assert reader.execute(sa.select(sa.func.count()).select_from(accounts)).scalar() == CUSTOMERS
    finally:
        reader.close()
    assert (code, summary["status"], summary["created"]) == (0, "ok", CUSTOMERS), stderr[-2000:]
    assert loads == [1] and reached.count("apply.before_commit") == CUSTOMERS // BATCH  # tried, then the batches
    store.assert_all_created()


def test_a_session_lost_in_the_load_leaves_the_store_as_it_was(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sessions ended just before the load's commit: nothing is created, every index is there, and the next
    sync creates everyone once."""
    indexes, keys = store.indexes(), store.keys()
    end = end_sessions(store.url)
    reached = hook(monkeypatch, integrator.store.apply, "apply.before_commit", end, at=1)
    code, summary, stderr = store.sync()
    assert reached.count("apply.before_commit") == 1
    assert (code, summary["status"], summary["created"]) == (1, "failed", 0), stderr[-2000:]
    assert "the creates" in summary["message"]
    store.engine.dispose()
    assert (store.count(accounts), store.count(outbox), store.count(account_events)) == (0, 0, 0)
    assert store.indexes() == indexes and store.keys() == keys
    monkeypatch.undo()
    monkeypatch.setattr(integrator.store.apply, "BULK_LOAD_MIN", 1000)
    code, again, stderr = store.sync()
    assert (code, again["status"], again["created"]) == (0, "ok", CUSTOMERS), stderr[-2000:]
    store.assert_all_created()


def test_a_portal_reading_during_the_load_waits_and_then_sees_every_account(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that starts while the load holds the tables waits for its commit and then sees all of it, never a
    part, nor a table without its indexes."""
    seen: list[int] = []

    def read_meanwhile() -> None:
        with store.engine.connect() as conn:
            seen.append(conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one())

    readers: list[threading.Thread] = []

    def start_reader() -> None:
        thread = threading.Thread(target=read_meanwhile)
        thread.start()
        readers.append(thread)

    hook(monkeypatch, integrator.store.apply, "apply.before_commit", start_reader, at=1)
    code, summary, _ = store.sync()
    for thread in readers:
        thread.join(30)
    assert (code, summary["created"]) == (0, CUSTOMERS)
    assert seen == [CUSTOMERS]


def test_a_first_load_of_contacts_with_usernames(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk load of contacts' accounts whose logins are usernames: each account is its customer's, for its
    contact, under its username, and its activation mail goes to the contact's e-mail, not to the username."""
    monkeypatch.setattr(integrator.store.apply, "BULK_LOAD_MIN", 1000)
    erp = SqliteErp(tmp_path / "erp.db")
    add_customers(erp, CUSTOMERS)
    db = sqlite3.connect(erp.path)
    with db:
        db.executemany(
            "INSERT INTO contacts (erp_id, contact_id, email, name, username) VALUES (?, 7, ?, 'Anna', ?)",
            [(n, f"Anna.{n}@Example.pl", f"anna-{n}") for n in range(1, CUSTOMERS + 1)],
        )
    db.close()
    config = make_config(erp, pg_url, tmp_path, source=erp.contacts_source(), accounts={"login": "username"})
    path = write_config(config)
    loads = before_call(monkeypatch, Applier, "_load_in_bulk", lambda: None, at=None)
    done = CliRunner().invoke(main, ["sync", "--json", "--config", str(path)])
    configure_logging()
    summary = json.loads(done.stdout)
    assert (done.exit_code, summary["created"], summary["mails_queued"], loads) == (0, CUSTOMERS, CUSTOMERS, [1])
    engine = open_store(pg_url)
    with engine.connect() as conn:
        mailed = conn.execute(
            sa.select(accounts.c.erp_id, accounts.c.contact_id, accounts.c.login, accounts.c.live_key,
                      outbox.c.recipient, account_events.c.erp_id, account_events.c.kind)
            .join(outbox, outbox.c.account_id == accounts.c.id)
            .join(account_events, account_events.c.account_id == accounts.c.id)
        ).all()  # fmt: skip
    engine.dispose()
    assert sorted(mailed, key=lambda row: int(row[0])) == [
        (str(n), "7", f"anna-{n}", f"{n}\x1f7", f"anna.{n}@example.pl", str(n), "created")
        for n in range(1, CUSTOMERS + 1)
    ]


def test_a_first_load_begins_while_the_source_is_read(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the staging holds `BULK_LOAD_MIN` creates, the load begins and inserts each staging write while the
    read goes on; a create that later loses its login to a smaller erp_id is taken back out with its event and mail,
    and the store ends as the load after the read leaves it: one commit, its indexes and keys, every account once."""
    monkeypatch.setattr(integrator.store.apply, "BULK_LOAD_MIN", 300)
    monkeypatch.setattr(Staging.__init__, "__defaults__", (100,))  # a staging write every 100 rows
    query = store.erp.source()["query"] + " ORDER BY erp_id DESC"  # 1100 is staged (and loaded) long before 2
    store.path = write_config(make_config(store.erp, store.url, store.path.parent, source={"query": query},
                                          store={"batch_size": BATCH}))  # fmt: skip
    store.erp.set(2, email="klient1100@example.pl")
    indexes, keys = store.indexes(), store.keys()
    loaded: list[int] = []
    load = Applier.load
    monkeypatch.setattr(Applier, "load", lambda self, high: (loaded.append(high), load(self, high))[1])
    reached = _commits(monkeypatch)
    code, summary, stderr = store.sync()
    assert (code, summary["created"], summary["rejected"], summary["mails_queued"]) == (0, 1199, 1, 1199), stderr
    assert summary["rejected_by_reason"] == {"duplicate_email": 1}
    assert "sync_reading_again" not in stderr, "the load was abandoned, and the source read twice"
    assert loaded == list(range(300, CUSTOMERS + 1, 100)), "not loaded write by write during the read"
    assert reached.count("apply.before_commit") == 1
    assert store.indexes() == indexes and store.keys() == keys
    with store.engine.connect() as conn:
        logins = dict(conn.execute(sa.select(accounts.c.erp_id, accounts.c.login)).all())
        mailed = conn.execute(sa.select(outbox.c.recipient).join(accounts, accounts.c.id == outbox.c.account_id))
        assert sorted(mailed.scalars()) == sorted(logins.values())
        events = conn.execute(sa.select(account_events.c.erp_id, account_events.c.kind)).all()
    assert "1100" not in logins and logins["2"] == "klient1100@example.pl" and len(logins) == 1199
    assert sorted(events) == sorted((erp_id, "created") for erp_id in logins)
    assert store.count(outbox) == store.count(account_events) == 1199
    code, again, stderr = store.sync()
    assert (code, again["created"], again["unchanged"], again["rejected"]) == (0, 0, 1199, 1), stderr[-2000:]
