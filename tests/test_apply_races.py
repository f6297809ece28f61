"""Races between a sync's apply and the portal, a store connection lost mid-apply, and two identity rules that
mutants of the reconciler once survived. Each runs on every store backend (SQLite always, PostgreSQL and MariaDB
when reachable; lost connections only on the servers, where a session can be ended from outside)."""

from __future__ import annotations

import email
import email.policy
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.erp import SqliteErp, make_config
from support.mailstore import token_in
from support.store_sessions import end_sessions as _end_sessions
from support.store_sessions import hook as _hook

import integrator.portal
import integrator.store.apply
from integrator.mail.delivery import deliver_pending
from integrator.portal import Outcome, activate
from integrator.store.db import open_store
from integrator.store.schema import account_events, accounts, outbox, quarantine
from integrator.sync import run_sync

PASSWORD = "Moje-Nowe-Hasło-1"


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    return SqliteErp(tmp_path / "erp.db")


class Shop:
    """An ERP, a store, and the portal's view of the mail sent so far."""

    def __init__(self, erp: SqliteErp, store_url: str, tmp: Path, **sections: Any) -> None:
        self.erp, self.tmp = erp, tmp
        self.config = make_config(erp, store_url, tmp, **sections)
        self.engine = open_store(store_url)
        self._read: set[Path] = set()

    def sync(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        return run_sync(self.config, engine=self.engine, **kwargs)

    def new_mail(self) -> list[tuple[str, str]]:
        """Deliver pending mail; (recipient, text) of every mail delivered since the last call."""
        deliver_pending(self.engine, self.config)
        found = []
        for path in sorted((self.tmp / "mail").glob("*.eml")):
            if path in self._read:
                continue
            self._read.add(path)
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
            found.append((message["To"].addresses[0].addr_spec, text.get_content()))
        return found

    def rows(self, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table).where(*where)).mappings()]

    def accounts_of(self, erp_id: int) -> list[dict[str, Any]]:
        return sorted(self.rows(accounts, accounts.c.erp_id == str(erp_id)), key=lambda r: r["created_at"])


def test_an_activation_overlapping_a_removal_never_reopens_the_account(
    erp: SqliteErp, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portal checks the token, then (while it hashes the password) the customer loses the tag and a sync
    closes the account: the activation must not write `active` over `removed`."""
    erp.add(1)
    shop = Shop(erp, store_url, tmp_path)
    shop.sync()
    [(_, text)] = shop.new_mail()
    erp.set(1, tags="hurt")
    reached = _hook(monkeypatch, integrator.portal, "portal.before_set_password", lambda: shop.sync())
    result = activate(shop.engine, token_in(text), PASSWORD)
    assert "portal.before_set_password" in reached
    assert result.outcome is Outcome.INVALID_TOKEN
    [account] = shop.accounts_of(1)
    assert (account["status"], account["password_hash"], account["activated_at"]) == ("removed", None, None)
    kinds = [e["kind"] for e in shop.rows(account_events, account_events.c.account_id == account["id"])]
    assert kinds == ["created", "removed"]


def test_a_login_change_overlapping_an_activation_is_told_at_the_new_address(
    erp: SqliteErp, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync moves a pending account to a new e-mail while the customer activates it with the link sent to the
    old one. Whichever commits first, the customer ends active and a mail reaches the new address telling them
    their login (never an activation mail cancelled as "already activated", which would tell them nothing)."""
    erp.add(1, email="stary@example.pl")
    shop = Shop(erp, store_url, tmp_path)
    shop.sync()
    [(_, text)] = shop.new_mail()
    token = token_in(text)
    erp.set(1, email="nowy@example.pl")
    outcome: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcome.append(activate(shop.engine, token, PASSWORD).outcome))

    def activate_meanwhile() -> None:
        worker.start()
        worker.join(timeout=3)  # done at once when nothing holds the account; else it waits for the sync's commit

    reached = _hook(monkeypatch, integrator.store.apply, "apply.update_read", activate_meanwhile)
    result = shop.sync()
    worker.join(timeout=60)
    assert "apply.update_read" in reached and result.updated == 1
    assert outcome == [Outcome.OK]
    [account] = shop.accounts_of(1)
    assert (account["status"], account["login"]) == ("active", "nowy@example.pl")
    [mail] = shop.rows(outbox, outbox.c.recipient == "nowy@example.pl")
    delivered = shop.new_mail()
    assert [to for to, _ in delivered] == ["nowy@example.pl"], shop.rows(outbox)
    [(_, told)] = delivered
    assert "nowy@example.pl" in told
    assert shop.rows(outbox, outbox.c.id == mail["id"])[0]["status"] == "sent"


def test_a_second_row_of_a_live_customer_never_removes_its_account(
    erp: SqliteErp, store_url: str, tmp_path: Path
) -> None:
    """The source returns one customer twice: the second row is rejected as a duplicate id, and the customer's
    live account stays exactly as it was (a duplicate row is no reason to close anybody)."""
    erp.add(1)
    erp.add(2)
    shop = Shop(erp, store_url, tmp_path)
    shop.sync()
    [before] = shop.accounts_of(1)
    source = erp.source()
    source["query"] = f"{source['query']} UNION ALL {source['query']} WHERE erp_id = 1"
    shop.config = make_config(erp, store_url, tmp_path, source=source)
    result = shop.sync()
    assert (result.removed, result.rejected_by_reason) == (0, {"duplicate_erp_id": 1})
    [after] = shop.accounts_of(1)
    assert (after["id"], after["status"], after["removed_at"]) == (before["id"], "pending_activation", None)


def test_a_restored_account_that_was_activated_is_active_again(erp: SqliteErp, store_url: str, tmp_path: Path) -> None:
    """`readd = "restore"` reopens the newest closed identity in the state it had: activated before means active
    (no new activation mail); never activated means pending, with a new activation mail."""
    erp.add(1)
    erp.add(2)
    shop = Shop(erp, store_url, tmp_path, accounts={"readd": "restore"})
    shop.sync()
    [text] = [text for to, text in shop.new_mail() if to == "klient1@example.pl"]
    assert activate(shop.engine, token_in(text), PASSWORD).outcome is Outcome.OK
    erp.set(1, tags="hurt")
    erp.set(2, tags="hurt")
    assert shop.sync().removed == 2
    erp.set(1, tags="b2b")
    erp.set(2, tags="b2b")
    result = shop.sync()
    assert (result.created, result.readded) == (2, 2)
    [one], [two] = shop.accounts_of(1), shop.accounts_of(2)
    assert (one["status"], two["status"]) == ("active", "pending_activation")
    assert [to for to, _ in shop.new_mail()] == ["klient2@example.pl"]


# -- a lost store connection -----------------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", ["postgresql", "mariadb"], indirect=True)
def test_a_store_connection_lost_in_the_apply_quarantines_nothing(
    erp: SqliteErp, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's sessions are ended just before the first create batch commits: the run fails saying the store's
    connection was lost, no good record is quarantined, and the next sync creates every account once."""
    for erp_id in range(1, 8):
        erp.add(erp_id)
    shop = Shop(erp, store_url, tmp_path, store={"batch_size": 3})
    reached = _hook(monkeypatch, integrator.store.apply, "apply.before_commit", _end_sessions(store_url))
    result = shop.sync()
    assert "apply.before_commit" in reached
    assert result.status == "failed" and result.exit_code == 1
    assert "store's connection was lost" in (result.message or "")
    assert result.quarantined == 0 and shop.rows(quarantine, sa.true()) == []
    monkeypatch.undo()
    again = shop.sync()
    assert again.status == "ok" and again.quarantined == 0
    live = shop.rows(accounts, accounts.c.status != "removed")
    assert sorted(int(a["erp_id"]) for a in live) == list(range(1, 8))
    assert len(shop.rows(outbox, sa.true())) == 7
