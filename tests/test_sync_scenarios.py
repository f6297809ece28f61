"""Every identity rule of SPEC.md, end to end: SQLite ERP → SQLite3 ODBC → rules → reconcile → store.

Each scenario runs on every store backend (SQLite always, PostgreSQL and MariaDB when reachable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.erp import SqliteErp, make_config

from integrator.store.db import open_store
from integrator.store.schema import account_events, accounts, outbox, run_actions, runs
from integrator.sync import run_sync


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    return SqliteErp(tmp_path / "erp.db")


class World:
    """An ERP, a store and a config, with helpers to sync and to read what the portal would see."""

    def __init__(self, erp: SqliteErp, store_url: str, tmp: Path) -> None:
        self.erp = erp
        self.tmp = tmp
        self.store_url = store_url
        self.config = make_config(erp, store_url, tmp)
        self.engine = open_store(store_url)

    def reconfigure(self, **sections: Any) -> None:
        self.config = make_config(self.erp, self.store_url, self.tmp, **sections)

    def sync(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        return run_sync(self.config, engine=self.engine, **kwargs)

    def rows(self, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            query = sa.select(table).where(*where) if where else sa.select(table)
            return [dict(r) for r in conn.execute(query).mappings()]

    def accounts_of(self, erp_id: int) -> list[dict[str, Any]]:
        return sorted(self.rows(accounts, accounts.c.erp_id == str(erp_id)), key=lambda r: r["created_at"])

    def live(self) -> dict[str, dict[str, Any]]:
        return {r["erp_id"]: r for r in self.rows(accounts, accounts.c.status != "removed")}

    def mails(self, account_id: str | None = None) -> list[dict[str, Any]]:
        return self.rows(outbox, outbox.c.account_id == account_id) if account_id else self.rows(outbox)

    def snapshot(self) -> tuple[Any, ...]:
        return (
            sorted((tuple(r.values()) for r in self.rows(accounts)), key=str),
            len(self.rows(account_events)),
            len(self.rows(outbox)),
        )


@pytest.fixture
def world(erp: SqliteErp, store_url: str, tmp_path: Path) -> World:
    return World(erp, store_url, tmp_path)


def test_tag_added_creates_pending_account_and_one_activation_mail(world: World) -> None:
    """A customer that gains the tag gets a new pending account with a UUID id and one activation mail."""
    world.erp.add(1, tags="vip")
    first = world.sync()
    assert (first.status, first.created, first.rejected) == ("ok", 0, 1)
    world.erp.set(1, tags="vip, B2B ")
    result = world.sync()
    assert (result.created, result.mails_queued) == (1, 1)
    [account] = world.accounts_of(1)
    assert account["status"] == "pending_activation" and len(account["id"]) == 36
    assert account["login"] == "klient1@example.pl" and not account["blocked"]
    [mail] = world.mails(account["id"])
    assert (mail["kind"], mail["recipient"], mail["status"]) == (
        "activation",
        "klient1@example.pl",
        "pending",
    )


def test_field_change_updates_in_place_without_mail(world: World) -> None:
    """A changed synced field updates the same identity, records what changed, and queues no mail."""
    world.erp.add(1, phone="111")
    world.sync()
    [before] = world.accounts_of(1)
    world.erp.set(1, phone="222", name="Nowa Nazwa Łódź")
    result = world.sync()
    assert (result.updated, result.created, result.mails_queued) == (1, 0, 0)
    [after] = world.accounts_of(1)
    assert after["id"] == before["id"] and after["phone"] == "222" and after["name"] == "Nowa Nazwa Łódź"
    events = world.rows(account_events, account_events.c.account_id == after["id"])
    assert [e["kind"] for e in events] == ["created", "updated"]
    assert '"phone": ["111", "222"]' in events[1]["changes"]
    assert len(world.mails(after["id"])) == 1  # the activation from the create only


def test_tag_removed_closes_account_and_keeps_history(world: World) -> None:
    """Removing the tag closes the account (status removed, removed_at, reason) and keeps its data and events."""
    world.erp.add(1)
    world.sync()
    world.erp.set(1, tags="hurt")
    result = world.sync()
    assert result.removed == 1
    [account] = world.accounts_of(1)
    assert account["status"] == "removed" and account["removed_at"] is not None
    assert "missing_tag" in account["removed_reason"] and account["login"] == "klient1@example.pl"
    kinds = [e["kind"] for e in world.rows(account_events, account_events.c.account_id == account["id"])]
    assert kinds == ["created", "removed"]


def test_readd_issues_a_new_identity_and_a_new_mail(world: World) -> None:
    """A tag re-added after removal creates a brand-new identity; the old one stays removed."""
    world.erp.add(1)
    world.sync()
    world.erp.set(1, tags="")
    world.sync()
    world.erp.set(1, tags="b2b")
    result = world.sync()
    assert (result.created, result.readded, result.mails_queued) == (1, 1, 1)
    old, new = world.accounts_of(1)
    assert old["status"] == "removed" and new["status"] == "pending_activation" and old["id"] != new["id"]
    assert len(world.mails(new["id"])) == 1 and len(world.mails(old["id"])) == 1
    kinds = [e["kind"] for e in world.rows(account_events, account_events.c.account_id == new["id"])]
    assert kinds == ["readded"]


def test_readd_restore_policy_reopens_the_newest_closed_identity(world: World) -> None:
    """With readd = "restore", the closed identity is reopened instead of a new one being made."""
    world.reconfigure(accounts={"readd": "restore"})
    world.erp.add(1)
    world.sync()
    [original] = world.accounts_of(1)
    world.erp.set(1, tags="")
    world.sync()
    world.erp.set(1, tags="b2b", phone="999")
    result = world.sync()
    assert (result.created, result.readded) == (1, 1)
    [account] = world.accounts_of(1)
    assert account["id"] == original["id"] and account["status"] == "pending_activation"
    assert account["phone"] == "999" and account["removed_at"] is None


def test_customer_deleted_from_erp_is_removed(world: World) -> None:
    """A customer that disappears from the source has its account closed as not_in_source."""
    for erp_id in (1, 2):
        world.erp.add(erp_id)
    world.sync()
    world.erp.delete(2)
    result = world.sync()
    assert result.removed == 1
    assert world.accounts_of(2)[0]["removed_reason"] == "not_in_source"
    assert world.accounts_of(1)[0]["status"] == "pending_activation"


def test_duplicate_emails_give_one_account_and_reject_the_others(world: World) -> None:
    """Customers sharing an e-mail: the smallest erp_id wins; the rest are rejected as duplicate_email."""
    world.erp.add(10, email="Wspolny@Example.pl ")
    world.erp.add(9, email="wspolny@example.pl")
    world.erp.add(11, email="wspolny@example.pl")
    result = world.sync()
    assert (result.created, result.rejected_by_reason.get("duplicate_email")) == (1, 2)
    assert set(world.live()) == {"9"}
    rejected = world.rows(run_actions, run_actions.c.action == "reject")
    assert sorted((r["erp_id"], r["reason"]) for r in rejected) == [
        ("10", "duplicate_email"),
        ("11", "duplicate_email"),
    ]


def test_duplicate_email_keeps_the_existing_owner(world: World) -> None:
    """The customer that already owns a live account with the login keeps it, even against a smaller erp_id."""
    world.erp.add(20, email="firma@example.pl")
    world.sync()
    world.erp.add(5, email="FIRMA@example.pl")
    result = world.sync()
    assert result.rejected_by_reason.get("duplicate_email") == 1 and result.created == 0
    assert set(world.live()) == {"20"}


def test_login_freed_by_a_removal_is_reused_in_the_same_run(world: World) -> None:
    """Removals apply before creations, so a login freed this run goes to its new owner in the same run."""
    world.erp.add(1, email="biuro@example.pl")
    world.sync()
    world.erp.set(1, tags="")
    world.erp.add(2, email="biuro@example.pl")
    result = world.sync()
    assert (result.removed, result.created, result.rejected_by_reason.get("duplicate_email")) == (1, 1, None)
    live = world.live()
    assert set(live) == {"2"} and live["2"]["login"] == "biuro@example.pl"


def test_login_change_is_applied_and_told_at_the_new_address(world: World) -> None:
    """An e-mail change updates the login; an active account gets a login_changed mail at the new address."""
    world.erp.add(1, email="stary@example.pl")
    world.sync()
    with world.engine.begin() as conn:
        conn.execute(accounts.update().values(status="active"))
    world.erp.set(1, email="nowy@example.pl")
    result = world.sync()
    assert (result.updated, result.mails_queued) == (1, 1)
    [account] = world.accounts_of(1)
    assert account["login"] == "nowy@example.pl"
    mail = [m for m in world.mails(account["id"]) if m["kind"] == "login_changed"]
    assert len(mail) == 1 and mail[0]["recipient"] == "nowy@example.pl" and "stary@example.pl" in mail[0]["context"]


def test_two_customers_can_swap_logins_in_one_run(world: World) -> None:
    """Two live accounts exchanging e-mails update cleanly despite the unique live-login index."""
    world.erp.add(1, email="a@example.pl")
    world.erp.add(2, email="b@example.pl")
    world.sync()
    world.erp.set(1, email="b@example.pl")
    world.erp.set(2, email="a@example.pl")
    result = world.sync()
    assert (result.status, result.updated, result.rejected) == ("ok", 2, 0)
    live = world.live()
    assert (live["1"]["login"], live["2"]["login"]) == ("b@example.pl", "a@example.pl")


def test_rerun_without_change_writes_nothing(world: World) -> None:
    """A second sync over an unchanged ERP writes no account, event or mail row."""
    for erp_id in range(1, 30):
        world.erp.add(erp_id)
    world.erp.add(99, email="zly adres")
    world.sync()
    before = world.snapshot()
    result = world.sync()
    assert (result.created, result.updated, result.removed, result.unchanged) == (0, 0, 0, 29)
    assert world.snapshot() == before


def test_dry_run_writes_nothing_and_queues_nothing(world: World) -> None:
    """--dry-run reports the plan, per record, and leaves accounts, mail and history untouched."""
    world.erp.add(1)
    world.erp.add(2, tags="")
    before = (world.snapshot(), len(world.rows(runs)))
    result = world.sync(dry_run=True)
    assert (result.status, result.created, result.rejected) == ("dry_run", 1, 1)
    assert {(a["erp_id"], a["action"]) for a in result.actions} >= {("1", "create")}
    assert (world.snapshot(), len(world.rows(runs))) == before


def test_null_and_garbage_emails_are_rejected_not_lost(world: World) -> None:
    """NULL, blank and malformed e-mails reject their record with a reason; valid ones still sync."""
    world.erp.add(1, email="ok@example.pl")
    world.erp.add(2, email="")
    world.erp.set(2, email=None)
    world.erp.add(3, email="   ")
    world.erp.add(4, email="jan@@example")
    world.erp.add(5, email="brak")
    result = world.sync()
    assert result.created == 1 and result.rejected == 4
    assert result.rejected_by_reason.get("missing_email", 0) + result.rejected_by_reason.get("invalid_email", 0) == 4
    reasons = {r["erp_id"]: r["reasons"] for r in result.rejections}
    assert reasons["2"] == "missing_email" and reasons["5"] == "invalid_email"


def test_email_turned_invalid_removes_the_account(world: World) -> None:
    """A live account whose customer's e-mail becomes invalid is closed with invalid_email."""
    world.erp.add(1)
    world.sync()
    world.erp.set(1, email="nie-ma-maila")
    assert world.sync().removed == 1
    assert world.accounts_of(1)[0]["removed_reason"] == "invalid_email"


def test_inactive_customer_is_removed(world: World) -> None:
    """A customer made inactive in the ERP loses access."""
    world.erp.add(1)
    world.sync()
    world.erp.set(1, active=0)
    assert world.sync().removed == 1
    assert world.accounts_of(1)[0]["removed_reason"] == "inactive"


def test_failed_source_removes_nobody(world: World) -> None:
    """Bad SQL ends the run as failed before anything is applied: every account stays live."""
    for erp_id in (1, 2, 3):
        world.erp.add(erp_id)
    world.sync()
    world.reconfigure(source=world.erp.source(query="SELECT erp_id, name, email, tags FROM no_such_table"))
    result = world.sync()
    assert result.status == "failed" and result.exit_code == 1 and "no_such_table" in (result.message or "")
    assert len(world.live()) == 3
    assert world.rows(runs)[-1]["status"] == "failed"


def test_garbled_record_is_quarantined_and_its_account_kept(world: World) -> None:
    """A record whose values cannot be read is quarantined (exit 3) and its live account is left alone."""
    world.erp.add(1)
    world.erp.add(2)
    world.sync()
    world.erp.set(1, active="moze")
    world.erp.set(2, phone="555")
    result = world.sync()
    assert (result.status, result.exit_code, result.quarantined, result.removed) == ("quarantined", 3, 1, 0)
    assert world.live()["1"]["status"] == "pending_activation" and world.live()["2"]["phone"] == "555"
    world.erp.set(1, active=1)
    assert world.sync().status == "ok"


def test_blocked_account_stays_blocked_through_updates(world: World) -> None:
    """A sync updates a blocked account's data but never unblocks it."""
    world.erp.add(1)
    world.sync()
    with world.engine.begin() as conn:
        conn.execute(accounts.update().values(blocked=True, blocked_reason="zaległe płatności"))
    world.erp.set(1, phone="777")
    world.sync()
    [account] = world.accounts_of(1)
    assert account["blocked"] and account["phone"] == "777" and account["blocked_reason"] == "zaległe płatności"


def test_only_syncs_one_customer(world: World) -> None:
    """--only ERP_ID creates, updates or removes just that customer and leaves the others for later."""
    world.erp.add(1)
    world.erp.add(2)
    result = world.sync(only="2")
    assert (result.records, result.created) == (1, 1)
    assert set(world.live()) == {"2"}
    world.erp.delete(2)
    assert world.sync(only="2").removed == 1
    assert world.live() == {}


def test_mass_removal_is_refused_unless_allowed(world: World) -> None:
    """Removing more than max_removals is refused whole (exit 4) and lists the refused removals."""
    world.reconfigure(safety={"max_removals": 2, "min_live_for_percent": 1000})
    for erp_id in range(1, 6):
        world.erp.add(erp_id)
    world.sync()
    for erp_id in (1, 2, 3):
        world.erp.set(erp_id, tags="")
    world.erp.add(6)
    result = world.sync()
    assert (result.status, result.exit_code, len(result.refused)) == ("refused", 4, 3)
    assert {r["erp_id"] for r in result.refused} == {"1", "2", "3"}
    assert len(world.live()) == 5  # not even the create of 6 was applied
    assert world.sync(allow_mass_removal=True).removed == 3


def test_empty_source_is_refused_while_accounts_are_live(world: World) -> None:
    """A source returning zero records never wipes the live accounts."""
    world.erp.add(1)
    world.sync()
    world.erp.clear()
    result = world.sync()
    assert result.status == "refused" and "no records" in (result.message or "")
    assert len(world.live()) == 1


def test_unchanged_rows_are_skipped_by_digest_on_the_next_run(world: World) -> None:
    """A rerun recognises unchanged rows by their raw digest; a cosmetic change refreshes only the digest."""
    world.erp.add(1, tags="b2b, vip")
    world.erp.add(2)
    world.sync()
    assert world.sync().skipped == 2
    world.erp.set(1, tags="vip,B2B")  # same tags, other spelling: same account, new raw row
    before = world.accounts_of(1)[0]
    result = world.sync()
    assert (result.unchanged, result.skipped, result.refreshed, result.updated) == (2, 1, 1, 0)
    after = world.accounts_of(1)[0]
    assert after["fingerprint"] != before["fingerprint"] and after["updated_at"] == before["updated_at"]
    assert world.sync().skipped == 2


def test_a_new_rule_applies_to_rows_that_did_not_change(world: World) -> None:
    """Changing the rules changes the digest key, so unchanged rows are judged again under the new rule."""
    world.erp.add(1, price_level="Detaliczna")
    world.erp.add(2, price_level="Hurtowa")
    world.sync()
    world.reconfigure(rules={"exclude": [{"name": "retail", "field": "price_level", "equals": "detaliczna"}]})
    result = world.sync()
    assert (result.skipped, result.removed, result.unchanged) == (0, 1, 1)
    assert world.accounts_of(1)[0]["removed_reason"] == "rule:retail"
