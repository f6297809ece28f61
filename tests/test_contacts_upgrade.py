"""Contacts from outside: the migration of a store made by the previous schema (row by row), the installed
`integrator sync` on a contacts source (killed at crash points and run again), and a property: whatever the ERP
does to customers and contacts, the live accounts are the eligible contacts with unique logins."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.crash import integrator, integrator_json, killed
from support.erp import SqliteErp, make_config

from integrator.records import normalize_login
from integrator.store.db import _alembic_config, open_store
from integrator.store.schema import account_events, account_secrets, accounts, outbox
from integrator.sync import run_sync

NOW = datetime(2026, 11, 1, 12, 0, 0)


def _legacy_store(url: str) -> sa.Engine:
    """A store at revision 0002 (the schema before contacts), with accounts, a secret, events and mail."""
    engine = sa.create_engine(open_store(url, upgrade=False).url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002")
    rows = [
        {"id": f"00000000-0000-4000-8000-00000000000{n}", "erp_id": str(n), "login": f"k{n}@example.pl",
         "live_login": f"k{n}@example.pl" if n != 3 else None, "live_erp_id": str(n) if n != 3 else None,
         "status": ("active", "pending_activation", "removed")[n - 1], "blocked": n == 1,
         "blocked_reason": "zaległości" if n == 1 else None, "name": f"Firma {n} Żółć", "phone": "12 345",
         "price_level": "hurt", "discount": "7.5000", "locale": "pl", "fingerprint": f"{n:016x}",
         "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA" if n == 1 else None,
         "must_change_password": False, "created_at": NOW, "updated_at": NOW,
         "activated_at": NOW if n == 1 else None, "removed_at": NOW if n == 3 else None,
         "removed_reason": "missing_tag" if n == 3 else None, "created_run_id": 1}
        for n in (1, 2, 3)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(accounts.insert(), rows)
        conn.execute(
            sa.text(
                "INSERT INTO account_secrets (account_id, kind, secret_hash, created_at, expires_at)"
                " VALUES (:a, 'activation_link', 'hash-only', :t, :t)"
            ),
            {"a": rows[1]["id"], "t": NOW},
        )
        conn.execute(
            sa.text(
                "INSERT INTO account_events (account_id, erp_id, run_id, actor, kind, at)"
                " VALUES (:a, '1', 1, 'sync', 'created', :t)"
            ),
            {"a": rows[0]["id"], "t": NOW},
        )
        conn.execute(
            sa.text(
                "INSERT INTO outbox (account_id, kind, recipient, status, attempts, created_at)"
                " VALUES (:a, 'activation', 'k2@example.pl', 'pending', 0, :t)"
            ),
            {"a": rows[1]["id"], "t": NOW},
        )
    return engine


def _table(engine: sa.Engine, table: sa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        query = sa.select(*(table.c[c] for c in columns)).order_by(*(table.c[c] for c in columns[:1]))
        return [tuple(r) for r in conn.execute(query)]


def test_a_store_of_the_previous_schema_upgrades_and_loses_nothing(store_url: str) -> None:
    """Every account stays a per-customer account with its id, login, status, secrets, events and mail; a live one
    gets its erp_id as its key, a removed one none; the new columns are empty."""
    legacy = _legacy_store(store_url)
    new_columns = ("contact_id", "contact_name", "email", "attributes", "live_key")
    old_columns = [c.name for c in accounts.c if c.name not in new_columns]
    before = _table(legacy, accounts, old_columns)
    secrets_before = _table(legacy, account_secrets, ["account_id", "kind", "secret_hash"])
    events_before = _table(legacy, account_events, ["account_id", "erp_id", "kind"])
    outbox_before = _table(legacy, outbox, ["account_id", "kind", "recipient", "status"])
    legacy.dispose()
    engine = open_store(store_url)
    after = _table(engine, accounts, old_columns)
    assert after == before
    new = _table(engine, accounts, ["id", "live_key", "contact_id", "contact_name", "email", "attributes"])
    assert [r[1:] for r in new] == [("1", None, None, None, None), ("2", None, None, None, None), (None,) * 5]
    assert _table(engine, account_secrets, ["account_id", "kind", "secret_hash"]) == secrets_before
    assert _table(engine, account_events, ["account_id", "erp_id", "kind"]) == events_before
    assert _table(engine, outbox, ["account_id", "kind", "recipient", "status"]) == outbox_before


def test_an_upgraded_store_syncs_per_customer_as_before(tmp_path: Path, store_url: str, sqlite_odbc: str) -> None:
    """After the upgrade, the same ERP syncs to no change but the fields it really changed: the identities stay."""
    _legacy_store(store_url).dispose()
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(1, email="k1@example.pl", name="Firma 1 Żółć")
    erp.add(2, email="k2@example.pl", name="Firma 2 Żółć")
    result = run_sync(make_config(erp, store_url, tmp_path), engine=open_store(store_url))
    assert (result.created, result.removed, result.readded) == (0, 0, 0)
    engine = open_store(store_url)
    live = _table(engine, accounts, ["id", "erp_id", "live_key", "status"])
    assert [r for r in live if r[2]] == [
        ("00000000-0000-4000-8000-000000000001", "1", "1", "active"),
        ("00000000-0000-4000-8000-000000000002", "2", "2", "pending_activation"),
    ]


# -- the installed command, killed and run again ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["apply.before_commit:1", "apply.after_commit:2", "sync.before_finish:1"])
def test_a_contacts_sync_killed_at_a_crash_point_converges(tmp_path: Path, sqlite_odbc: str, crash_at: str) -> None:
    """`integrator sync` on a contacts source, SIGKILLed mid-apply: the rerun leaves one live account per eligible
    contact and one activation mail each, never two."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 31):
        erp.add(erp_id)
        for contact in range(1, 1 + erp_id % 3):
            erp.add_contact(erp_id, contact)
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, source=erp.contacts_source(),
                         store={"batch_size": 7})  # fmt: skip
    killed(config, "sync", crash_at=crash_at)
    done = integrator_json(config, "sync")
    assert done["status"] == "ok"
    engine = open_store(config.store.url)
    live = _table(engine, accounts, ["erp_id", "contact_id", "status"])
    live = [r for r in live if r[2] != "removed"]
    expected = {(str(e), str(c)) for e in range(1, 31) for c in range(1, 1 + e % 3)}
    assert sorted((e, c) for e, c, _ in live) == sorted(expected)
    mails = _table(engine, outbox, ["account_id", "kind"])
    assert len(mails) == len(expected) == len({a for a, _ in mails})


# -- the property ---------------------------------------------------------------------------------------------------
_edit = st.one_of(
    st.tuples(st.just("tag"), st.integers(1, 4), st.booleans()),
    st.tuples(st.just("active"), st.integers(1, 4), st.booleans()),
    st.tuples(st.just("contact"), st.integers(1, 4), st.integers(1, 3), st.sampled_from(["a", "b", "c", "", None])),
    st.tuples(st.just("access"), st.integers(1, 4), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("delete_contact"), st.integers(1, 4), st.integers(1, 3)),
    st.tuples(st.just("delete_customer"), st.integers(1, 4)),
)


def _eligible(customers: dict[int, dict[str, Any]], contacts: dict[tuple[int, int], dict[str, Any]]) -> dict[str, set]:
    """login -> keys of the eligible contacts asking for it."""
    wanted: dict[str, set[tuple[str, str]]] = {}
    for (erp_id, contact), c in contacts.items():
        customer = customers.get(erp_id)
        if customer and customer["tag"] and customer["active"] and c["access"] and c["email"]:
            wanted.setdefault(normalize_login(c["email"]), set()).add((str(erp_id), str(contact)))
    return wanted


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.lists(_edit, min_size=1, max_size=4), min_size=2, max_size=4))
def test_live_accounts_are_always_the_eligible_contacts_with_unique_logins(
    tmp_path_factory: pytest.TempPathFactory, sqlite_odbc: str, steps: list[list[tuple[Any, ...]]]
) -> None:
    """Random edits to customers (tag, active, deleted) and contacts (added with an e-mail, none or a shared one,
    access switched, deleted), a sync after each batch: the rules of SPEC "Identity semantics", per contact."""
    tmp = tmp_path_factory.mktemp("prop")
    erp = SqliteErp(tmp / "erp.db")
    config = make_config(erp, f"sqlite:///{tmp / 'store.db'}", tmp, source=erp.contacts_source(),
                         safety={"max_removals": 10**6, "max_removal_percent": 100})  # fmt: skip
    engine = open_store(config.store.url)
    customers = {n: {"tag": True, "active": True} for n in range(1, 5)}
    contacts: dict[tuple[int, int], dict[str, Any]] = {}
    for n in range(1, 5):
        erp.add(n)
    for batch in steps:
        for edit in batch:
            kind, erp_id = edit[0], edit[1]
            if kind == "tag" and erp_id in customers:
                customers[erp_id]["tag"] = edit[2]
                erp.set(erp_id, tags="b2b" if edit[2] else "hurt")
            elif kind == "active" and erp_id in customers:
                customers[erp_id]["active"] = edit[2]
                erp.set(erp_id, active=int(edit[2]))
            elif kind == "contact":
                email = None if edit[3] is None else (f"{edit[3]}@example.pl" if edit[3] else "")
                contacts[(erp_id, edit[2])] = {"email": email, "access": True}
                erp.add_contact(erp_id, edit[2], email=email if email is not None else "")
            elif kind == "access" and (erp_id, edit[2]) in contacts:
                contacts[(erp_id, edit[2])]["access"] = edit[3]
                erp.set_contact(erp_id, edit[2], access=int(edit[3]))
            elif kind == "delete_contact":
                contacts.pop((erp_id, edit[2]), None)
                erp.delete_contact(erp_id, edit[2])
            elif kind == "delete_customer":
                customers.pop(erp_id, None)
                erp.delete(erp_id)
        result = run_sync(config, engine=engine)
        assert result.status == "ok", result
        with engine.connect() as conn:
            live = conn.execute(
                sa.select(accounts.c.erp_id, accounts.c.contact_id, accounts.c.login).where(
                    accounts.c.status != "removed"
                )
            ).all()
        wanted = _eligible(customers, contacts)
        eligible = {key: login for login, keys in wanted.items() for key in keys}
        held = {(erp_id, contact): login for erp_id, contact, login in live}
        assert len(set(held.values())) == len(held)  # one live account per login
        assert set(held) <= set(eligible)  # nobody ineligible keeps an account
        assert set(wanted) <= set(held.values())  # every login an eligible contact asks for is held
        # An eligible contact without an account lost its login to another; a loser that was live keeps its old one.
        assert all(key in held or login in held.values() for key, login in eligible.items())


def test_check_shows_the_first_customers_and_contacts_with_their_own_verdicts(tmp_path: Path, sqlite_odbc: str) -> None:
    """`integrator check --json` on a contacts source: customers judged by their own rules (their e-mail is not
    theirs to give), contacts by theirs, each contact with the login it would have."""
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(1)
    erp.add(2, tags="hurt", email="")
    erp.add_contact(1, 1, email="Anna@Example.pl")
    erp.add_contact(1, 2, access=0)
    erp.add_contact(2, 1, email="zly@@adres")
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, source=erp.contacts_source())
    checked = integrator_json(config, "check")
    assert [(r["erp_id"], r["verdict"]) for r in checked["records"]] == [
        ("1", "eligible"),
        ("2", "left out: missing_tag"),
    ]
    assert [(c["erp_id"], c["contact_id"], c["login"], c["verdict"]) for c in checked["contacts"]] == [
        ("1", "1", "anna@example.pl", "eligible if its customer is"),
        ("1", "2", "osoba2.k1@example.pl", "left out: no_access"),
        ("2", "1", "zly@@adres", "left out: invalid_email"),
    ]
    assert {c["check"]: c["ok"] for c in checked["checks"]}["contacts"] == "yes"


def test_the_sync_summary_names_the_contact_of_each_rejection(tmp_path: Path, sqlite_odbc: str) -> None:
    """`integrator sync` (human output) on a contacts source: the left-out table has a contact column, so two
    contacts of one customer are told apart."""
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(1)
    erp.add_contact(1, 7, access=0)
    erp.add_contact(1, 8, active=0)
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, source=erp.contacts_source())
    done = integrator(config, "sync", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    [header] = [line for line in done.stdout.splitlines() if "contact_id" in line and "reasons" in line]
    cells = [[c.strip() for c in line.strip("│ ").split("│")] for line in done.stdout.splitlines()]
    rows = {row[1]: row[2] for row in cells if len(row) == 3 and row[0] == "1"}
    assert header and rows == {"7": "no_access", "8": "contact_inactive", "": "no_eligible_contact"}
