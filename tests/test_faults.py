"""Faults from outside: the ERP connection lost mid-read, an ERP that cannot be queried, a store that cannot be
reached, a mail server that is down. Each ends clearly, with the right exit code, and none removes an account,
applies half a run or loses a mail.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.crash import INTEGRATOR, integrator, integrator_json, write_config
from support.erp import SqliteErp, make_config
from support.smtp import SmtpServer, free_port

from integrator.store.db import open_store
from integrator.store.schema import account_events, accounts, outbox, runs
from tests.conftest import PG_HOST, PG_PORT, require_odbc_driver

ERP_PASSWORD = "Erp-Haslo-93xk"


def live_accounts(engine: sa.Engine) -> dict[str, str]:
    """erp_id -> name of every live account."""
    with engine.connect() as conn:
        query = sa.select(accounts.c.erp_id, accounts.c.name).where(accounts.c.status != "removed")
        return dict(conn.execute(query).all())


def events_of_run(engine: sa.Engine, run_id: int) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(account_events.c.run_id == run_id)
        return conn.execute(query).scalar_one()


def test_erp_connection_lost_mid_read_fails_the_run_and_applies_nothing(pg_database: str, tmp_path: Path) -> None:
    """The psqlODBC connection is terminated (`pg_terminate_backend`) while the sync streams the customers, even
    with --allow-mass-removal: exit 1, status failed, nothing removed or updated, the password never shown,
    and the next sync runs normally."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    dsn = f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TABLE customers (erp_id int PRIMARY KEY, name text, email text, tags text)")
        db.execute("INSERT INTO customers SELECT i, 'Firma ' || i, 'k' || i || '@example.pl', 'b2b' "
                   "FROM generate_series(1, 5000) i")  # fmt: skip
    # Row 3000 waits for an advisory lock the test holds: the read stops there, half-way, until it is killed.
    source = {
        "kind": "odbc",
        "connection_string": f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};"
        f"Database={pg_database};Uid=postgres;Pwd={ERP_PASSWORD};UseDeclareFetch=1;Fetch=100",
        "query": "SELECT erp_id, name, email, tags, CASE WHEN erp_id = 3000 THEN pg_advisory_lock_shared(4242) END "
        "AS gate FROM customers ORDER BY erp_id",
        "fetch_size": 100,
        "connect_retries": 0,
    }
    config = make_config(SqliteErp(tmp_path / "unused.db"), f"sqlite:///{tmp_path / 'store.db'}", tmp_path,
                         source=source)  # fmt: skip
    engine = open_store(config.store.url)
    assert integrator_json(config, "sync")["created"] == 5000
    with psycopg.connect(dsn, autocommit=True) as db, psycopg.connect(dsn, autocommit=True) as gate:
        db.execute("UPDATE customers SET name = name || ' (nowa nazwa)'")
        gate.execute("SELECT pg_advisory_lock(4242)")
        child = subprocess.Popen(
            [INTEGRATOR, "sync", "--json", "--allow-mass-removal", "--config", str(write_config(config))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            reader = None
            while reader is None and time.monotonic() < deadline:
                reader = db.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                    "AND query ILIKE 'fetch%%'", (pg_database,),
                ).fetchone()  # fmt: skip
                time.sleep(0.05)
            assert reader is not None, "the sync never reached row 3000"
            db.execute("SELECT pg_terminate_backend(%s)", reader)
            stdout, stderr = child.communicate(timeout=120)
        finally:
            child.kill()
    assert child.returncode == 1, stderr[-3000:]
    summary = json.loads(stdout)
    assert summary["status"] == "failed" and (summary["created"], summary["updated"], summary["removed"]) == (0, 0, 0)
    read = int(re.search(r"after (\d+) rows", summary["message"]).group(1))  # type: ignore[union-attr]
    assert 0 < read < 3000 and "lost connection" in summary["message"]
    assert ERP_PASSWORD not in stdout + stderr
    live = live_accounts(engine)
    assert len(live) == 5000 and not any(name.endswith("(nowa nazwa)") for name in live.values())
    assert events_of_run(engine, summary["run_id"]) == 0
    with engine.connect() as conn:
        status, error = conn.execute(sa.select(runs.c.status, runs.c.error).where(runs.c.id == summary["run_id"])).one()
    assert status == "failed" and "lost connection" in error
    fine = dict(source, query="SELECT erp_id, name, email, tags FROM customers ORDER BY erp_id")
    config = make_config(SqliteErp(tmp_path / "unused.db"), config.store.url, tmp_path, source=fine)
    assert integrator_json(config, "sync")["updated"] == 5000  # the lock was released, the source reads again


@pytest.mark.parametrize(
    "fault",
    ["missing table", "missing column", "unreachable server"],
)
def test_erp_that_cannot_be_queried_fails_the_run_and_removes_nobody(
    fault: str, tmp_path: Path, sqlite_odbc: str
) -> None:
    """A query on a missing table or column, or an ERP server that refuses connections, ends the run with exit 1
    and its reason, and every account stays live (the guard is not what saves them: mass removal is allowed)."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 6):
        erp.add(erp_id)
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    assert integrator_json(config, "sync")["created"] == 5
    source, expected = {
        "missing table": (erp.source(query="SELECT erp_id, name, email, tags FROM klienci"), "klienci"),
        "missing column": (erp.source(query="SELECT erp_id, name, mail AS email, tags FROM customers"), "mail"),
        "unreachable server": (
            {"kind": "odbc", "connection_string": f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={free_port()};"
             f"Database=erp;Uid=erp;Pwd={ERP_PASSWORD}", "query": "SELECT 1", "connect_retries": 0,
             "connect_timeout": 5},
            "127.0.0.1",
        ),
    }[fault]  # fmt: skip
    broken = make_config(erp, config.store.url, tmp_path, source=source)
    summary = integrator_json(broken, "sync", "--allow-mass-removal", code=1)
    assert summary["status"] == "failed" and expected in summary["message"]
    assert ERP_PASSWORD not in summary["message"]
    assert (summary["removed"], len(live_accounts(open_store(config.store.url)))) == (0, 5)


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_store_unreachable_is_a_clear_error_without_its_password(scheme: str, tmp_path: Path, sqlite_odbc: str) -> None:
    """A store URL on a closed port (its password given through `${ENV}`) makes `integrator sync` exit 1 with
    an error naming the store's host, port and database, and the password nowhere in the output."""
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(1)
    port = free_port()
    config = make_config(erp, f"{scheme}://b2b:placeholder@127.0.0.1:{port}/b2b_portal", tmp_path)
    path = write_config(config)
    path.write_text(path.read_text().replace("b2b:placeholder@", "b2b:${STORE_PASSWORD}@"))
    password = "S3cret-Store-Haslo"
    done = integrator(path, "sync", "--json", env={"STORE_PASSWORD": password})
    assert done.returncode == 1, done.stderr
    assert f"127.0.0.1:{port}/b2b_portal" in done.stderr and "store" in done.stderr
    assert password not in done.stdout + done.stderr
    assert f"error: cannot reach store {scheme}://b2b:***@127.0.0.1:{port}/b2b_portal: " in done.stderr
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["run_id"], summary["status"]) == (None, "failed")
    assert summary["message"].startswith(f"cannot reach store {scheme}://b2b:***@127.0.0.1:{port}/b2b_portal: ")


def test_smtp_down_keeps_mail_pending_and_the_next_delivery_sends_each_once(tmp_path: Path, sqlite_odbc: str) -> None:
    """With the mail server down, a sync still succeeds and its mails stay pending without being charged an
    attempt; `mail deliver` says so (exit 3); once the server is back the next delivery sends each mail once."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 6):
        erp.add(erp_id)
    server = SmtpServer()  # its port is reserved but nobody listens yet
    mail = {"backend": "smtp", "deliver_after_sync": True,
            "smtp": {"host": "127.0.0.1", "port": server.port, "security": "none", "timeout": 5}}  # fmt: skip
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, mail=mail)
    summary = integrator_json(config, "sync")
    assert (summary["status"], summary["mails_queued"]) == ("ok", 5)
    assert summary["mail"]["pending_left"] == 5 and summary["mail"]["backend_error"]
    down = integrator_json(config, "mail", "deliver", code=3)
    assert (down["sent"], down["failed"], down["pending_left"]) == (0, 0, 5)
    engine = open_store(config.store.url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.status, outbox.c.attempts)).all()
    assert rows == [("pending", 0)] * 5
    server.start()
    try:
        delivered = integrator_json(config, "mail", "deliver")
        again = integrator_json(config, "sync")  # the next sync finds nothing left to send
    finally:
        server.stop()
    assert (delivered["sent"], delivered["pending_left"]) == (5, 0)
    assert again["mail"]["sent"] == 0
    per_recipient = collections.Counter(r.rcpt_tos[0] for r in server.handler.received)
    assert per_recipient == {f"klient{n}@example.pl": 1 for n in range(1, 6)}
