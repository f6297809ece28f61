"""Contacts, usernames and attributes end to end: SQLite ERP (customers and contacts tables) → SQLite3 ODBC →
contacts rules → reconcile per contact → store. Every identity rule of SPEC.md, per contact, on every store backend
(SQLite always, PostgreSQL and MariaDB when reachable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.erp import SqliteErp, make_config

from integrator.store.db import open_store
from integrator.store.schema import account_events, accounts, outbox, run_actions
from integrator.sync import run_sync


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    return SqliteErp(tmp_path / "erp.db")


class Firm:
    """An ERP with contacts, a store and a config, with what the portal would see."""

    def __init__(self, erp: SqliteErp, store_url: str, tmp: Path, *extra: str, **sections: Any) -> None:
        self.erp, self.tmp, self.store_url = erp, tmp, store_url
        self.source = erp.contacts_source(*extra)
        self.sections = sections
        self.config = make_config(erp, store_url, tmp, source=self.source, **sections)
        self.engine = open_store(store_url)

    def reconfigure(self, **source: Any) -> None:
        self.source = {**self.source, **source}
        self.config = make_config(self.erp, self.store_url, self.tmp, source=self.source, **self.sections)

    def sync(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        return run_sync(self.config, engine=self.engine, **kwargs)

    def rows(self, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            query = sa.select(table).where(*where) if where else sa.select(table)
            return [dict(r) for r in conn.execute(query).mappings()]

    def live(self) -> dict[tuple[str, str | None], dict[str, Any]]:
        """(erp_id, contact_id) -> live account."""
        return {(a["erp_id"], a["contact_id"]): a for a in self.rows(accounts, accounts.c.status != "removed")}

    def of(self, erp_id: int, contact_id: int) -> list[dict[str, Any]]:
        """Every account a contact ever had, oldest first."""
        found = self.rows(accounts, accounts.c.erp_id == str(erp_id), accounts.c.contact_id == str(contact_id))
        return sorted(found, key=lambda a: (a["created_at"], a["id"]))

    def mails_to(self, address: str) -> list[dict[str, Any]]:
        return self.rows(outbox, outbox.c.recipient == address)


@pytest.fixture
def firm(erp: SqliteErp, store_url: str, tmp_path: Path) -> Firm:
    return Firm(erp, store_url, tmp_path)


def _reasons(result: Any) -> dict[tuple[str, str | None], str]:
    return {(r["erp_id"], r["contact_id"]): r["reasons"] for r in result.rejections}


def test_each_eligible_contact_gets_its_own_account_with_its_customers_fields(firm: Firm) -> None:
    """One account per eligible contact, keyed by (erp_id, contact_id): the customer's synced fields, the contact's
    name, phone and e-mail; contacts inactive, without access or without e-mail get none, each with its reason."""
    firm.erp.add(1, name="Hurtownia Żółć", price_level="hurt", discount="12.5", sales_rep="Łukasz", phone="111")
    firm.erp.add_contact(1, 1, email="anna@zolc.pl", name="Anna Żak", phone="601")
    firm.erp.add_contact(1, 2, email="BOLEK@zolc.pl", name=None)
    firm.erp.add_contact(1, 3, access=0)
    firm.erp.add_contact(1, 4, active=0)
    firm.erp.add_contact(1, 5, email="")
    result = firm.sync()
    assert (result.status, result.created, result.mails_queued) == ("ok", 2, 2)
    assert _reasons(result) == {("1", "3"): "no_access", ("1", "4"): "contact_inactive", ("1", "5"): "missing_email"}
    live = firm.live()
    assert set(live) == {("1", "1"), ("1", "2")}
    anna, bolek = live[("1", "1")], live[("1", "2")]
    assert (anna["login"], anna["name"], anna["contact_name"], anna["phone"]) == (
        "anna@zolc.pl", "Hurtownia Żółć", "Anna Żak", "601",
    )  # fmt: skip
    assert (bolek["login"], bolek["contact_name"], bolek["phone"]) == ("bolek@zolc.pl", None, "111")
    for account in (anna, bolek):
        assert (account["price_level"], account["sales_rep"], account["status"]) == (
            "hurt",
            "Łukasz",
            "pending_activation",
        )
        assert float(account["discount"]) == 12.5
    assert [m["kind"] for m in firm.mails_to("anna@zolc.pl")] == ["activation"]
    again = firm.sync()
    assert (again.created, again.updated, again.removed, again.unchanged) == (0, 0, 0, 2)


def test_a_customer_losing_the_tag_removes_all_its_contacts_and_regaining_it_makes_new_identities(firm: Firm) -> None:
    """Three contacts, one customer: the tag goes, all three accounts close (missing_tag); it comes back, three
    brand-new identities with a new activation mail each."""
    firm.erp.add(1)
    for contact in (1, 2, 3):
        firm.erp.add_contact(1, contact)
    assert firm.sync().created == 3
    before = {key: a["id"] for key, a in firm.live().items()}
    firm.erp.set(1, tags="hurt")
    gone = firm.sync()
    assert (gone.removed, firm.live()) == (3, {})
    removed = firm.rows(accounts, accounts.c.status == "removed")
    assert {a["removed_reason"] for a in removed} == {"missing_tag"}
    firm.erp.set(1, tags="b2b")
    back = firm.sync()
    assert (back.created, back.readded, back.mails_queued) == (3, 3, 3)
    after = {key: a["id"] for key, a in firm.live().items()}
    assert set(after) == set(before) and not set(after.values()) & set(before.values())


def test_a_contact_switched_off_is_removed_and_switched_on_again_gets_a_new_identity(firm: Firm) -> None:
    firm.erp.add(1)
    firm.erp.add_contact(1, 1)
    firm.erp.add_contact(1, 2)
    firm.sync()
    firm.erp.set_contact(1, 2, access=0)
    result = firm.sync()
    assert (result.removed, set(firm.live())) == (1, {("1", "1")})
    [closed] = firm.of(1, 2)
    assert (closed["status"], closed["removed_reason"]) == ("removed", "no_access")
    firm.erp.set_contact(1, 2, access=1)
    assert firm.sync().readded == 1
    old, new = firm.of(1, 2)
    assert (old["status"], new["status"], new["id"] != old["id"]) == ("removed", "pending_activation", True)


def test_a_deleted_contact_is_removed_and_a_moved_contact_is_a_new_identity(firm: Firm) -> None:
    """Accounts are per (erp_id, contact_id): a contact that moves to another customer closes its old account
    and gets a new one under the new customer, with that customer's fields."""
    firm.erp.add(1, price_level="A")
    firm.erp.add(2, price_level="B")
    firm.erp.add_contact(1, 1)
    firm.erp.add_contact(1, 2, email="wedrowiec@example.pl")
    firm.sync()
    firm.erp.delete_contact(1, 1)
    firm.erp.set_contact(1, 2, erp_id=2)
    result = firm.sync()
    assert (result.removed, result.created) == (2, 1)
    assert {a["removed_reason"] for a in firm.rows(accounts, accounts.c.status == "removed")} == {"not_in_source"}
    [moved] = firm.live().values()
    assert (moved["erp_id"], moved["contact_id"], moved["price_level"], moved["login"]) == (
        "2", "2", "B", "wedrowiec@example.pl",
    )  # fmt: skip


def test_the_same_email_on_two_contacts_is_contested_and_the_holder_keeps_it(firm: Firm) -> None:
    """Two contacts of two customers share an e-mail: the smallest key wins, the other is duplicate_email; later,
    the live holder keeps the login even against a smaller key."""
    firm.erp.add(5)
    firm.erp.add(7)
    firm.erp.add_contact(7, 1, email="wspolny@example.pl")
    firm.erp.add_contact(5, 9, email="Wspolny@Example.pl")
    first = firm.sync()
    assert (first.created, _reasons(first)) == (1, {("7", "1"): "duplicate_email"})
    assert set(firm.live()) == {("5", "9")}
    firm.erp.add(3)
    firm.erp.add_contact(3, 1, email="wspolny@example.pl")
    second = firm.sync()
    assert (second.created, set(firm.live())) == (0, {("5", "9")})
    assert _reasons(second) == {("7", "1"): "duplicate_email", ("3", "1"): "duplicate_email"}


def test_a_contact_of_an_unknown_customer_is_rejected_and_a_deleted_customer_closes_its_contacts(firm: Firm) -> None:
    firm.erp.add(1)
    firm.erp.add_contact(1, 1)
    firm.erp.add_contact(99, 1)
    first = firm.sync()
    assert (first.created, _reasons(first)) == (1, {("99", "1"): "unknown_customer"})
    firm.erp.delete(1)
    second = firm.sync()
    assert (second.removed, firm.live()) == (1, {})
    [closed] = firm.of(1, 1)
    assert closed["removed_reason"] == "unknown_customer"


def test_an_eligible_customer_without_an_eligible_contact_is_reported(firm: Firm) -> None:
    """`no_eligible_contact` names the tagged, active customer whose contacts all fail; untagged ones are not."""
    firm.erp.add(1)
    firm.erp.add(2, tags="hurt")
    firm.erp.add(3)
    firm.erp.add_contact(1, 1, active=0)
    firm.erp.add_contact(2, 1)
    firm.erp.add_contact(3, 1)
    result = firm.sync()
    reasons = _reasons(result)
    assert reasons[("1", None)] == "no_eligible_contact"
    assert ("2", None) not in reasons and ("3", None) not in reasons
    assert result.rejected_by_reason["no_eligible_contact"] == 1
    actions = firm.rows(run_actions, run_actions.c.reason == "no_eligible_contact")
    assert [(a["erp_id"], a["contact_id"]) for a in actions] == [("1", None)]


def test_customer_and_contact_changes_update_their_accounts_without_mail(firm: Firm) -> None:
    """The customer's price level reaches every contact's account; a contact's phone only its own; each change is
    an update event with old and new values, and no mail."""
    firm.erp.add(1, price_level="A")
    firm.erp.add_contact(1, 1, phone="1")
    firm.erp.add_contact(1, 2, phone="2")
    firm.sync()
    firm.erp.set(1, price_level="B")
    firm.erp.set_contact(1, 2, phone="22")
    result = firm.sync()
    assert (result.updated, result.mails_queued, result.created, result.removed) == (2, 0, 0, 0)
    live = firm.live()
    assert (live[("1", "1")]["price_level"], live[("1", "2")]["price_level"], live[("1", "2")]["phone"]) == (
        "B", "B", "22",
    )  # fmt: skip
    changes = [json.loads(e["changes"]) for e in firm.rows(account_events, account_events.c.kind == "updated")]
    assert sorted(changes, key=len) == [{"price_level": ["A", "B"]}, {"price_level": ["A", "B"], "phone": ["2", "22"]}]


def test_a_resync_skips_unchanged_contacts_and_still_judges_what_changed(firm: Firm) -> None:
    """A contact whose customer row and own row are as they were when its account was written needs no record:
    it is counted unchanged (skipped) and its customer still counts as served. A changed customer row reaches all
    its contacts, and a customer row that can no longer be read quarantines its contacts instead of skipping them."""
    firm.erp.add(1, price_level="A")
    firm.erp.add_contact(1, 1)
    firm.erp.add_contact(1, 2)
    firm.erp.add(2)
    firm.erp.add_contact(2, 1)
    assert firm.sync().created == 3
    again = firm.sync()
    assert (again.skipped, again.unchanged, again.updated, again.rejections) == (3, 3, 0, [])
    firm.erp.set(1, price_level="B")
    changed = firm.sync()
    assert (changed.skipped, changed.updated, changed.rejections) == (1, 2, [])
    assert {a["price_level"] for key, a in firm.live().items() if key[0] == "1"} == {"B"}
    firm.erp.set(2, active="maybe")
    unreadable = firm.sync()
    assert (unreadable.skipped, unreadable.quarantined, unreadable.removed) == (2, 2, 0)  # the row and its contact
    assert set(firm.live()) == {("1", "1"), ("1", "2"), ("2", "1")}


def test_a_contacts_new_email_changes_its_login_and_tells_the_new_address(firm: Firm) -> None:
    firm.erp.add(1)
    firm.erp.add_contact(1, 1, email="stary@example.pl")
    firm.sync()
    firm.erp.set_contact(1, 1, email="nowy@example.pl")
    result = firm.sync()
    assert (result.updated, result.mails_queued) == (1, 1)
    [account] = firm.live().values()
    assert account["login"] == "nowy@example.pl"
    assert [m["kind"] for m in firm.mails_to("nowy@example.pl")] == ["activation"]  # still pending: activate there


@pytest.mark.parametrize("readd", ["new_identity", "restore"])
def test_readd_policy_holds_per_contact(erp: SqliteErp, store_url: str, tmp_path: Path, readd: str) -> None:
    firm = Firm(erp, store_url, tmp_path, accounts={"readd": readd})
    firm.erp.add(1)
    firm.erp.add_contact(1, 1)
    firm.sync()
    firm.erp.set_contact(1, 1, active=0)
    firm.sync()
    firm.erp.set_contact(1, 1, active=1)
    assert firm.sync().readded == 1
    identities = firm.of(1, 1)
    assert len(identities) == (2 if readd == "new_identity" else 1)
    assert identities[-1]["status"] == "pending_activation"


def test_username_logins_take_the_contacts_then_the_customers_username_and_mail_goes_to_the_email(
    erp: SqliteErp, store_url: str, tmp_path: Path
) -> None:
    """`[accounts] login = "username"`: the login is the contact's username, else its customer's; a missing one is
    `missing_username`, a shared one `duplicate_username`; mail still goes to the e-mail."""
    firm = Firm(erp, store_url, tmp_path, "username", accounts={"login": "username"})
    firm.erp.add(1, username="K/0001")
    firm.erp.add(2)
    firm.erp.add_contact(1, 1, email="anna@example.pl", username="Anna.K1")
    firm.erp.add_contact(1, 2, email="bolek@example.pl")
    firm.erp.add_contact(2, 1, email="cezary@example.pl")
    firm.erp.add_contact(2, 2, email="dorota@example.pl", username="anna.k1")
    result = firm.sync()
    assert _reasons(result) == {("2", "1"): "missing_username", ("2", "2"): "duplicate_username"}
    live = firm.live()
    assert {key: (a["login"], a["email"]) for key, a in live.items()} == {
        ("1", "1"): ("anna.k1", "anna@example.pl"),
        ("1", "2"): ("k/0001", "bolek@example.pl"),
    }
    assert sorted(m["recipient"] for m in firm.rows(outbox)) == ["anna@example.pl", "bolek@example.pl"]
    firm.erp.set_contact(1, 2, email="bolek.nowy@example.pl")
    moved = firm.sync()
    assert (moved.updated, moved.mails_queued) == (1, 1)
    assert [m["kind"] for m in firm.mails_to("bolek.nowy@example.pl")] == ["activation"]


def test_attributes_are_stored_as_json_and_diffed_like_synced_fields(
    erp: SqliteErp, store_url: str, tmp_path: Path
) -> None:
    """`[source] attributes`: customer columns (and the contacts query's where it has them) stored as one JSON
    object; numbers as the ERP gives them (SQLite's NUMERIC reads as a float; a driver's Decimal is kept as an exact
    string, see tests/test_connector_contacts.py), NULL as null, Polish text and long lists intact; a change is an
    update with old and new values and no mail; a contact's own value overrides its customer's."""
    codes = ",".join(f"SKU-{n:05d}" for n in range(400))
    firm = Firm(erp, store_url, tmp_path, "credit_limit", "payment_terms")
    firm.reconfigure(
        attributes=["credit_limit", "payment_terms"],
        contacts_query="SELECT erp_id, contact_id, email, name, active, access, credit_limit FROM contacts",
    )
    firm.erp.add(1, credit_limit=15000.5, payment_terms="przelew 14 dni, płatność z góry")
    firm.erp.add(2, credit_limit=None, payment_terms=codes)
    firm.erp.add_contact(1, 1)
    firm.erp.add_contact(1, 2, credit_limit=500.25)
    firm.erp.add_contact(2, 1)
    assert firm.sync().created == 3
    live = firm.live()
    attributes = {key: json.loads(a["attributes"]) for key, a in live.items()}
    assert attributes[("1", "1")] == {"credit_limit": 15000.5, "payment_terms": "przelew 14 dni, płatność z góry"}
    assert attributes[("1", "2")]["credit_limit"] == 500.25
    assert attributes[("2", "1")] == {"credit_limit": None, "payment_terms": codes}
    firm.erp.set(1, payment_terms="gotówka")
    firm.erp.set(2, credit_limit=1)
    result = firm.sync()
    assert (result.updated, result.mails_queued) == (3, 0)
    events = [json.loads(e["changes"]) for e in firm.rows(account_events, account_events.c.kind == "updated")]
    assert {"credit_limit": None, "payment_terms": codes} in [e["attributes"][0] for e in events]
    assert {"credit_limit": 1, "payment_terms": codes} in [e["attributes"][1] for e in events]
    firm.reconfigure(attributes=["payment_terms"])  # an attribute dropped from the config is dropped from accounts
    firm.sync()
    assert {key: json.loads(a["attributes"]) for key, a in firm.live().items()}[("2", "1")] == {"payment_terms": codes}
    firm.reconfigure(attributes=["payment_terms", "credit_limit"])  # one added to a live installation: an update
    added = firm.sync()
    assert (added.updated, added.mails_queued) == (3, 0)
    now = {key: json.loads(a["attributes"]) for key, a in firm.live().items()}
    assert now[("2", "1")] == {"credit_limit": 1, "payment_terms": codes}
    assert now[("1", "2")] == {"credit_limit": 500.25, "payment_terms": "gotówka"}
    latest = [json.loads(e["changes"]) for e in firm.rows(account_events, account_events.c.kind == "updated")][-3:]
    assert [{"payment_terms": codes}, {"credit_limit": 1, "payment_terms": codes}] in [e["attributes"] for e in latest]


def test_switching_an_installation_to_contacts_is_a_planned_change_the_guard_protects(
    erp: SqliteErp, store_url: str, tmp_path: Path
) -> None:
    """Per-customer accounts exist; the config gains a contacts query: the dry run shows each customer's account
    removed and its contacts' created, the deletion guard refuses the run, and with --allow-mass-removal it is
    applied: old identities closed (their history kept), new ones per contact."""
    for erp_id in range(1, 6):
        erp.add(erp_id)
        erp.add_contact(erp_id, 1)
    plain = make_config(erp, store_url, tmp_path, safety={"min_live_for_percent": 1})
    assert run_sync(plain, engine=open_store(store_url)).created == 5
    firm = Firm(erp, store_url, tmp_path, safety={"min_live_for_percent": 1})
    guarded = firm.sync(dry_run=True)
    assert (guarded.status, guarded.exit_code) == ("refused", 4)
    assert sorted((r["erp_id"], r["contact_id"]) for r in guarded.refused) == [(str(n), None) for n in range(1, 6)]
    plan = firm.sync(dry_run=True, allow_mass_removal=True)
    assert (plan.removed, plan.created) == (5, 5)
    assert {(a["erp_id"], a["contact_id"], a["action"]) for a in plan.actions if a["action"] != "reject"} == {
        *((str(n), None, "remove") for n in range(1, 6)),
        *((str(n), "1", "create") for n in range(1, 6)),
    }
    refused = firm.sync()
    assert (refused.status, refused.exit_code, len(firm.live())) == ("refused", 4, 5)
    assert all(contact is None for _, contact in firm.live())
    done = firm.sync(allow_mass_removal=True)
    assert (done.status, done.removed, done.created) == ("ok", 5, 5)
    assert set(firm.live()) == {(str(n), "1") for n in range(1, 6)}
    assert len(firm.rows(accounts, accounts.c.contact_id.is_(None), accounts.c.status == "removed")) == 5


def test_the_customers_held_for_their_contacts_are_unchanged_and_share_their_repeated_text() -> None:
    """The join holds every tagged customer's record while the contacts stream by (a million-customer ERP holds
    two thirds of a million): each held record equals the row's, and text that customers repeat (price level,
    sales rep and their e-mail, locale) is held once, not once a customer."""
    from integrator.config import RulesConfig
    from integrator.contacts import ContactJoin
    from integrator.reconcile import Plan
    from integrator.records import Record
    from integrator.rules import build_customer_engine

    def text(*parts: str) -> str:  # a new string object each time, as a driver hands out
        return "".join(parts)

    rows = [
        Record(erp_id=str(n), name=f"Firma {n}", email=f"f{n}@example.pl", tags=frozenset({"b2b"}),
               price_level=text("hurt", "owa"), sales_rep=text("Anna ", "Kępińska"),
               sales_rep_email=text("anna@", "example.pl"), locale=text("p", "l"), origin=f"row {n}")
        for n in range(1, 4)
    ] + [Record(erp_id="9", name="Detal", email="d@example.pl", tags=frozenset({"detal"}))]  # fmt: skip
    assert rows[0].price_level is not rows[1].price_level
    join = ContactJoin(build_customer_engine(RulesConfig()), "b2b")
    join.read_customers(iter(rows), Plan())
    held = [join.customers[str(n)] for n in range(1, 4)]
    assert held == rows[:3] and all(type(record) is Record for record in held)
    for field in ("price_level", "sales_rep", "sales_rep_email", "locale"):
        assert getattr(held[0], field) is getattr(held[1], field) is getattr(held[2], field), field
    assert join.eligible == {"1", "2", "3"} and join.customers["9"].erp_id == ""  # the untagged placeholder


def test_text_unique_to_each_customer_stops_being_held_for_sharing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field that turns out unique per customer (a sales rep per customer, say) is not kept in the sharing tables
    beyond their limit, so it never costs more than holding the records alone; the records are the same."""
    from integrator import held_customers
    from integrator.config import RulesConfig
    from integrator.contacts import ContactJoin
    from integrator.reconcile import Plan
    from integrator.records import Record
    from integrator.rules import build_customer_engine

    monkeypatch.setattr(held_customers, "_SHARED_LIMIT", 3)
    rows = [Record(erp_id=str(n), name=None, email=None, tags=frozenset({"b2b"}), sales_rep=f"rep {n}")
            for n in range(10)]  # fmt: skip
    join = ContactJoin(build_customer_engine(RulesConfig()), "b2b")
    join.read_customers(iter(rows), Plan())
    assert [join.customers[str(n)] for n in range(10)] == rows
    assert len(join.customers._texts) == 3 and len(join.customers._combinations) == 3


def test_held_customers_come_back_as_they_were_read() -> None:
    """Each held customer is rebuilt equal to its record, value for value and type for type (a discount of 5.00
    stays 5.00, not the 5 another customer has; flags stay flags), attributes included; one whose attributes
    marshal cannot carry (a decimal, a date) is held as it is."""
    from datetime import date
    from decimal import Decimal

    from integrator.held_customers import HeldCustomers
    from integrator.records import Record

    b2b = frozenset({"b2b"})
    rows = [
        Record(erp_id="1", name="Hurtownia Zażółć", email="a@example.pl", tags=b2b, discount=Decimal("5"),
               active=True, origin="row 1", digest="00ff00ff00ff00ff", attributes=(("credit", 100), ("vip", True))),
        Record(erp_id="2", name=None, email=None, tags=b2b, discount=Decimal("5.00"), active=False, locale="en",
               problems=(), symbol="K/2", phone="+48 600", tax_id="PL1", username="jan.k"),
        Record(erp_id="3", name="Trzecia", email="c@example.pl", tags=b2b, discount=Decimal("5"),
               attributes=(("credit", Decimal("1500.50")), ("since", date(2020, 1, 31)))),
        Record(erp_id="4", name="Czwarta\udcff", email="d@example.pl", tags=b2b, price_level="hurt",
               attributes=(("rating", 4.5), ("note", None))),
    ]  # fmt: skip
    held = HeldCustomers()
    for row in rows:
        held.hold(row.erp_id, row)
    for row in reversed(rows):  # rebuilt, not the last one handed back
        back = held[row.erp_id]
        assert back == row and type(back) is Record
        assert [type(value) for value in back] == [type(value) for value in row]
        assert str(back.discount) == str(row.discount)
    assert isinstance(held._held["1"], bytes) and type(held._held["3"]) is Record
    assert dict(held.items()) == {row.erp_id: row for row in rows} and len(held) == 4 and "5" not in held


def test_held_customers_take_a_few_hundred_bytes_each() -> None:
    """What a contacts sync holds per tagged customer while the contacts stream by (two thirds of a million for a
    million-customer ERP): measured with tracemalloc, under 400 bytes a customer of the bench's shape, against
    about 940 as records."""
    import tracemalloc
    from decimal import Decimal

    from integrator.held_customers import HeldCustomers
    from integrator.records import Record

    b2b, discounts = frozenset({"b2b"}), [Decimal(d) for d in ("0", "2.5", "5", "7.5", "12")]
    reps = [(f"Przedstawiciel {n}", f"rep{n}@hurtownia.example.pl") for n in range(8)]

    def row(n: int) -> Record:
        rep, rep_mail = reps[n % 8]
        return Record(erp_id=str(n), name=f"Hurtownia Zażółć Kraków {n} sp. z o.o.",
                      email=f"zamowienia{n}@firma{n % 997}.example.pl", tags=b2b, symbol=f"K/{n:07d}",
                      tax_id=f"{5_000_000_000 + n}", phone=f"+48 {600_000_000 + n}", price_level="Hurtowa",
                      discount=discounts[n % 5], sales_rep="".join(rep), sales_rep_email="".join(rep_mail),
                      locale="pl", origin=f"row {n}", digest=f"{n:016x}")  # fmt: skip

    count = 20_000
    rows = [row(n) for n in range(count)]
    keys = [r.erp_id for r in rows]
    held = HeldCustomers()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for key, record in zip(keys, rows, strict=True):
            held.hold(key, record)
        del record
        per_customer = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert per_customer < 400, per_customer
    assert held[keys[123]] == rows[123]


@pytest.mark.parametrize(
    "own",
    [
        {},
        {"phone": "+48 600 100 200", "locale": "en", "username": "A-10", "attributes": (("region", "Łódź"),)},
        {"attributes": (("region", None), ("vip", True))},
    ],
    ids=["from-the-customer", "its-own", "attributes-merged"],
)
def test_a_contact_record_is_its_customer_with_the_contact_s_own_fields(own: dict[str, Any]) -> None:
    """`_contact_record` builds the record field by field in `Record`'s order: it equals the customer's record
    with the contact's fields put in by name, whatever the contact has of its own."""
    from decimal import Decimal

    from integrator.contacts import _contact_record, _merged
    from integrator.records import Contact, Record

    customer = Record(
        erp_id="7", name="Hurtownia Łódź", email="biuro@x.pl", tags=frozenset({"b2b"}), symbol="HL", tax_id="123",
        phone="+48 42 1", price_level="A", discount=Decimal("5.00"), sales_rep="Anna", sales_rep_email="a@x.pl",
        active=True, locale="pl", origin="row 7", digest="c" * 16, username="HURT-7",
        attributes=(("region", "Bałuty"), ("vip", False)),
    )  # fmt: skip
    contact = Contact(erp_id="7", contact_id="70", email="k@x.pl", name="Kasia", active=False, access=True,
                      origin="contacts row 3", **own)  # fmt: skip
    expected = customer._replace(
        erp_id="7\x1f70", email="k@x.pl", phone=contact.phone or customer.phone,
        locale=contact.locale or customer.locale, username=contact.username or customer.username,
        attributes=_merged(customer.attributes, contact.attributes), contact_id="70", contact_name="Kasia",
        contact_active=False, access=True, problems=("p",), origin="contacts row 3", digest="d" * 16,
    )  # fmt: skip
    built = _contact_record(contact, customer, "7\x1f70", ("p",), "d" * 16)
    assert built == expected and type(built) is Record
    assert built._asdict() == expected._asdict()
