"""The store's connection lost in the middle of a sync, at every phase, as a failover, a server restart or an
idle-session killer loses it: the run says so (the step, and that nothing of the interrupted batch was applied),
`sync --json` prints its summary, the run's row says how it ended, a loss before the apply is retried on a new
session, the daemon takes it as transient, and the next sync converges with no account and no mail twice. Mail
delivery the same. On PostgreSQL and MariaDB, whose sessions can be ended from outside."""

from __future__ import annotations

import email
import email.policy
import json
import sqlite3
import subprocess
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner
from structlog.testing import capture_logs
from support.crash import INTEGRATOR, write_config
from support.erp import SqliteErp, make_config
from support.mailstore import token_in
from support.store_sessions import add_customers, before_call, end_sessions, hook

import integrator.mail.secrets
import integrator.store.apply
import integrator.sync
from integrator.cli import main
from integrator.daemon import build_scheduler
from integrator.errors import StoreConnectionLost
from integrator.logs import configure_logging
from integrator.mail.delivery import deliver_pending
from integrator.portal import Outcome, activate
from integrator.store.db import open_store
from integrator.store.schema import accounts, outbox, runs
from integrator.store.staging import Staging

CUSTOMERS = 2000
BATCH = 400
"""Five create batches."""
LOST = "the store's connection was lost during"
PASSWORD = "Moje-Nowe-Hasło-1"
NOTHING_OF_THE_BATCH = "nothing of the interrupted batch was applied"

SERVERS = pytest.mark.parametrize("store_url", ["postgresql", "mariadb"], indirect=True)


class Shop:
    """An ERP of `customers` customers, a store on a server, a config file for the CLI."""

    def __init__(self, tmp: Path, store_url: str, customers: int = CUSTOMERS, store: dict[str, Any] | None = None,
                 **sections: Any) -> None:  # fmt: skip
        self.tmp = tmp
        self.erp = SqliteErp(tmp / "erp.db")
        add_customers(self.erp, customers)
        self.config = make_config(self.erp, store_url, tmp, store={"batch_size": BATCH, **(store or {})}, **sections)
        self.path = write_config(self.config)
        self.engine = open_store(store_url)
        self.end_sessions = end_sessions(store_url)

    def sync(self) -> tuple[int, dict[str, Any], str]:
        """`integrator sync --json` in this process (click's runner): exit code, the printed summary, stderr."""
        done = CliRunner().invoke(main, ["sync", "--json", "--config", str(self.path)])
        configure_logging()  # the runner's stderr is gone: later log lines go to the test's
        assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
        return done.exit_code, json.loads(done.stdout), done.stderr

    def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table).where(*where)).mappings()]

    def finished_run(self) -> bool:
        """Whether a run has ended ok; polled while the daemon works, so this test's own session may be among those
        ended from outside: that poll answers no, and the next one asks again on a new session."""
        try:
            return bool(self.rows(runs, runs.c.status == "ok"))
        except sa.exc.OperationalError:
            return False

    def run(self, run_id: int) -> dict[str, Any]:
        [row] = self.rows(runs, runs.c.id == run_id)
        return row

    def assert_converged(self, customers: int = CUSTOMERS) -> None:
        """Every customer has exactly one account, live, and exactly one activation mail queued for it."""
        every = self.rows(accounts)
        assert len(every) == customers
        assert sorted(int(a["erp_id"]) for a in every) == list(range(1, customers + 1))
        assert {a["status"] for a in every} == {"pending_activation"}
        mails = Counter((m["account_id"], m["kind"]) for m in self.rows(outbox))
        assert set(mails.values()) == {1} and len(mails) == customers
        assert {kind for _, kind in mails} == {"activation"}

    def mails(self) -> dict[Path, tuple[str, str]]:
        """Every mail sent so far (the file backend writes one .eml each): its recipient and text."""
        found = {}
        for path in (self.tmp / "mail").glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
            found[path] = (message["To"].addresses[0].addr_spec, text)
        return found

    def mails_by_recipient(self) -> Counter[str]:
        return Counter(to for to, _ in self.mails().values())


# -- a sync ----------------------------------------------------------------------------------------------------
PHASES = {
    # before the apply: read and staged again on a new session, the run ends ok
    "read": (lambda m, end: before_call(m, integrator.sync, "load_live_ledger", end), "the read", None),
    "staging": (lambda m, end: before_call(m, Staging, "flush", end), "the staging", None),
    # in the apply: the batch in flight rolls back, the run fails with what earlier batches committed
    "first batch": (lambda m, end: hook(m, integrator.store.apply, "apply.before_commit", end, at=1), "the creates", 0),
    "middle batch": (lambda m, end: hook(m, integrator.store.apply, "apply.before_commit", end, at=3), "the creates",
                     2 * BATCH),
    "last batch": (lambda m, end: hook(m, integrator.store.apply, "apply.before_commit", end, at=5), "the creates",
                   4 * BATCH),
    # everything applied: the run's row is written on a new session, the run ends ok
    "finish": (lambda m, end: hook(m, integrator.sync, "sync.before_finish", end), "recording the run's end", None),
}  # fmt: skip


@SERVERS
@pytest.mark.parametrize("phase", list(PHASES))
def test_sessions_ended_at_each_phase_of_a_sync(
    phase: str, tmp_path: Path, sqlite_odbc: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's sessions are ended at one phase of a first sync of 2,000 customers (batches of 400). Before the
    apply, the read and staging start over on a new session and the run ends ok; in the apply, the run fails naming
    the step, its summary counts what earlier batches committed, and nothing of the interrupted batch is in the
    store; at the finish, the run's row is written on a new session. The next sync converges either way."""
    shop = Shop(tmp_path, store_url)
    arrange, step, committed = PHASES[phase]
    reached = arrange(monkeypatch, shop.end_sessions)
    code, summary, stderr = shop.sync()
    assert reached, f"the sync never reached the {phase}"
    row = shop.run(summary["run_id"])
    if committed is None:  # recovered
        assert (code, summary["status"], summary["message"]) == (0, "ok", None), stderr[-3000:]
        assert summary["created"] == summary["mails_queued"] == CUSTOMERS
        assert (row["status"], row["error"], row["created"]) == ("ok", None, CUSTOMERS)
        if phase == "finish":
            assert "store_connection_lost" in stderr and step in stderr and "sync_reading_again" not in stderr
        else:
            assert "sync_reading_again" in stderr and f"{LOST} {step}" in stderr
    else:
        assert (code, summary["status"]) == (1, "failed"), stderr[-3000:]
        assert summary["message"].startswith(f"{LOST} {step} (") and NOTHING_OF_THE_BATCH in summary["message"]
        assert "sync_staging" not in summary["message"]  # never an error of a reconnected session
        assert (summary["created"], summary["mails_queued"], summary["quarantined"]) == (committed, committed, 0)
        assert (row["status"], row["error"], row["created"]) == ("failed", summary["message"], committed)
        assert len(shop.rows(accounts)) == len(shop.rows(outbox)) == committed
        assert "sync_reading_again" not in stderr  # never retried once anything was applied
    monkeypatch.undo()
    code, again, stderr = shop.sync()
    assert (code, again["status"], again["created"]) == (0, "ok", CUSTOMERS - summary["created"]), stderr[-3000:]
    assert again["quarantined"] == 0
    shop.assert_converged()


@SERVERS
def test_reading_again_is_bounded(
    tmp_path: Path, sqlite_odbc: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `[store] reconnect_attempts = 1`, sessions ended at every ledger load fail the run after its second
    attempt, logged once as read again; nothing was applied, and the run's row says why."""
    shop = Shop(tmp_path, store_url, customers=1000, store={"reconnect_attempts": 1})
    calls = before_call(monkeypatch, integrator.sync, "load_live_ledger", shop.end_sessions, at=None)
    code, summary, stderr = shop.sync()
    assert len(calls) == 2 and stderr.count("sync_reading_again") == 1
    assert (code, summary["status"], summary["created"], summary["records"]) == (1, "failed", 0, 0)
    assert summary["message"].startswith(f"{LOST} the read (") and NOTHING_OF_THE_BATCH in summary["message"]
    row = shop.run(summary["run_id"])
    assert (row["status"], row["error"]) == ("failed", summary["message"])
    assert shop.rows(accounts) == []
    monkeypatch.undo()
    code, again, _ = shop.sync()
    assert (code, again["created"]) == (0, 1000)
    shop.assert_converged(1000)


@SERVERS
def test_a_loss_among_updates_and_removals_sends_each_mail_once(
    tmp_path: Path, sqlite_odbc: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second sync of 1,000 customers closes 150 accounts and moves 500 to new e-mails; the sessions end as the
    login changes commit (after the removals did): the run fails with the removals counted, and the next sync
    moves the 500 once, each with one new activation mail to its new address."""
    shop = Shop(tmp_path, store_url, customers=1000)
    assert shop.sync()[0] == 0
    with closing(sqlite3.connect(shop.erp.path)) as db, db:
        db.execute("UPDATE customers SET email = 'nowy' || erp_id || '@example.pl' WHERE erp_id <= 500")
        db.execute("UPDATE customers SET tags = 'hurt' WHERE erp_id > 850")
    hook(monkeypatch, integrator.store.apply, "apply.before_commit", shop.end_sessions, at=2)
    code, summary, stderr = shop.sync()
    assert (code, summary["status"], summary["removed"], summary["updated"]) == (1, "failed", 150, 0), stderr[-3000:]
    assert summary["message"].startswith(f"{LOST} the login changes (")
    monkeypatch.undo()
    code, again, _ = shop.sync()
    assert (code, again["removed"], again["updated"], again["mails_queued"]) == (0, 0, 500, 500)
    moved = Counter(m["recipient"] for m in shop.rows(outbox) if m["recipient"].startswith("nowy"))
    assert len(moved) == 500 and set(moved.values()) == {1}
    live = shop.rows(accounts, accounts.c.status == "pending_activation")
    assert len(live) == 850 and sum(a["login"].startswith("nowy") for a in live) == 500


@SERVERS
def test_sync_json_as_a_command_reports_a_run_that_lost_its_store(
    tmp_path: Path, sqlite_odbc: str, store_url: str
) -> None:
    """`integrator sync --json` as ops run it, its store's sessions ended from outside once its run appears in
    `runs` (no retries configured): it prints its one object, status failed, its run id, what it applied and why,
    exits 1, and the next sync converges."""
    shop = Shop(tmp_path, store_url, store={"reconnect_attempts": 0})
    child = subprocess.Popen(
        [INTEGRATOR, "sync", "--json", "--config", str(shop.path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline, running = time.monotonic() + 60, None
        while running is None and time.monotonic() < deadline and child.poll() is None:
            with shop.engine.connect() as conn:
                running = conn.execute(sa.select(runs.c.id).where(runs.c.status == "running")).scalar()
            time.sleep(0.01)
        assert running is not None, "the run never appeared in runs"
        shop.end_sessions()
        stdout, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 1, stderr[-3000:]
    summary = json.loads(stdout)
    assert (summary["run_id"], summary["status"]) == (running, "failed")
    assert summary["message"].startswith(LOST) and NOTHING_OF_THE_BATCH in summary["message"]
    assert f"error: {summary['message']}" not in stderr  # --json: the reason is the object's, not a stderr line
    row = shop.run(running)
    assert (row["status"], row["error"], row["created"]) == ("failed", summary["message"], summary["created"])
    assert len(shop.rows(accounts)) == summary["created"]
    code, again, _ = shop.sync()
    assert (code, again["status"], again["created"]) == (0, "ok", CUSTOMERS - summary["created"])
    shop.assert_converged()


# -- the daemon ------------------------------------------------------------------------------------------------
@SERVERS
def test_the_daemon_takes_a_lost_connection_as_transient(
    tmp_path: Path, sqlite_odbc: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the real scheduler: the first sync loses the store's sessions in its second batch; the daemon logs it as
    a transient failure, and its next scheduled sync, on the same engine, finishes the work."""
    shop = Shop(tmp_path, store_url, customers=1000, schedule={"sync": "1s", "mail": "1h"})
    hook(monkeypatch, integrator.store.apply, "apply.before_commit", shop.end_sessions, at=2)
    scheduler = build_scheduler(shop.config, shop.engine, BackgroundScheduler(timezone="UTC"))
    with capture_logs() as logs:
        scheduler.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not shop.finished_run():
                time.sleep(0.2)
        finally:
            scheduler.shutdown(wait=True)
    first, second = sorted(shop.rows(runs), key=lambda r: r["id"])[:2]
    assert (first["status"], first["created"], second["status"]) == ("failed", BATCH, "ok")
    assert second["created"] == 1000 - BATCH and LOST in first["error"]
    [transient] = [e for e in logs if e["event"] == "sync_transient_failure"]
    assert (transient["log_level"], transient["run_id"], transient["error"]) == ("warning", first["id"], first["error"])
    assert not [e for e in logs if e["event"] in ("sync_crashed", "sync_error")]
    shop.assert_converged(1000)


# -- mail delivery ---------------------------------------------------------------------------------------------
@SERVERS
@pytest.mark.parametrize("where", ["issue", "revoke_others"], ids=["before-the-send", "after-the-send"])
def test_mail_delivery_goes_on_over_a_lost_session(
    where: str, tmp_path: Path, sqlite_odbc: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sessions end inside the 7th mail's transaction, before it is sent (as its secret is issued) or after
    (as its delivery is recorded): the transaction is done again on a new session, the batch goes on, and every
    customer gets exactly one mail, also from later deliveries."""
    shop = Shop(tmp_path, store_url, customers=30)
    assert shop.sync()[1]["mails_queued"] == 30
    calls = before_call(monkeypatch, integrator.mail.secrets, where, shop.end_sessions, at=7)
    report = deliver_pending(shop.engine, shop.config)
    assert len(calls) >= 8
    assert (report.sent, report.pending_left) == (30, 0)
    monkeypatch.undo()
    assert deliver_pending(shop.engine, shop.config).sent == 0
    received = shop.mails_by_recipient()
    assert len(received) == 30 and set(received.values()) == {1}
    assert {m["status"] for m in shop.rows(outbox)} == {"sent"}


@SERVERS
def test_a_mail_recorded_on_no_session_is_the_documented_window(
    tmp_path: Path, sqlite_odbc: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sessions end twice in a row as the 7th mail's delivery is recorded: the delivery stops with the store's
    connection lost, that mail stays pending and goes out again with the next delivery (the window the delivery
    module names), where only its newer link works; every other customer gets one mail."""
    shop = Shop(tmp_path, store_url, customers=30)
    assert shop.sync()[0] == 0
    before_call(monkeypatch, integrator.mail.secrets, "revoke_others", shop.end_sessions, at=7)
    before_call(monkeypatch, integrator.mail.secrets, "revoke_others", shop.end_sessions, at=8)  # its second session
    with pytest.raises(StoreConnectionLost, match="recording a sent mail"):
        deliver_pending(shop.engine, shop.config)
    monkeypatch.undo()
    pending = {m["recipient"] for m in shop.rows(outbox, outbox.c.status == "pending")}
    assert len(pending) == 24 and len(shop.mails()) == 7
    [(to, first)] = [mail for mail in shop.mails().values() if mail[0] in pending]  # sent, not recorded
    sent_before = set(shop.mails())
    assert deliver_pending(shop.engine, shop.config).sent == 24  # the 7th again, and the 23 never tried
    received = shop.mails_by_recipient()
    assert len(received) == 30 and received[to] == 2 and sum(received.values()) == 31
    [(_, second)] = [mail for path, mail in shop.mails().items() if mail[0] == to and path not in sent_before]
    assert activate(shop.engine, token_in(first), PASSWORD).outcome is Outcome.INVALID_TOKEN
    assert activate(shop.engine, token_in(second), PASSWORD).outcome is Outcome.OK
