"""What a person sees of contacts, usernames and attributes outside the sync: the account queries, `accounts
list|show`, `history show`, `explain`, `report`, the mail templates' variables and the demo. Store-level tests seed
accounts as the sync leaves them; the commands run as the installed `integrator` executable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.identity import identity_key
from integrator.store.db import open_store
from integrator.store.queries import actions_of_run, customer_accounts, find_account, iter_accounts
from integrator.store.schema import account_events, accounts, run_actions, runs

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def seed(
    engine: Engine,
    erp_id: str,
    login: str,
    *,
    contact_id: str | None = None,
    contact_name: str | None = None,
    email: str | None = None,
    attributes: dict[str, Any] | None = None,
    status: str = "pending_activation",
    run_id: int | None = None,
) -> str:
    """One account as the sync leaves it (a customer's, or a contact's with `contact_id`), with its created
    event in `run_id`; returns its id."""
    account_id = str(uuid.uuid4())
    live = status != "removed"
    now = utcnow()
    key = identity_key(erp_id, contact_id)
    with engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                id=account_id, erp_id=erp_id, contact_id=contact_id, login=login, email=email,
                live_login=login if live else None, live_erp_id=erp_id if live else None,
                live_key=key if live else None, status=status, blocked=False, name=f"Firma {erp_id} sp. z o.o.",
                contact_name=contact_name, locale="pl", fingerprint="f" * 16, must_change_password=False,
                attributes=json.dumps(attributes, ensure_ascii=False, sort_keys=True) if attributes else None,
                created_at=now, updated_at=now, removed_at=None if live else now,
            )
        )  # fmt: skip
        conn.execute(
            account_events.insert().values(
                account_id=account_id, erp_id=erp_id, run_id=run_id, actor="sync", kind="created", at=now
            )
        )
    return account_id


def start_run(engine: Engine) -> int:
    with engine.begin() as conn:
        result = conn.execute(runs.insert().values(started_at=utcnow(), status="ok", trigger="cli", dry_run=False))
    return int(result.inserted_primary_key[0])


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`integrator ARGS --config CONFIG` as a person runs it, with a wide table layout."""
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [INTEGRATOR, *args, "--config", str(config)], env=env, capture_output=True, text=True, timeout=120
    )


def json_of(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    return json.loads(done.stdout)


def store_config(tmp_path: Path, store_url: str) -> Path:
    """A config reading an (empty) CSV into `store_url`: enough for the commands that only read the store."""
    (tmp_path / "erp.csv").write_text("erp_id,name,email,tags\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nurl = "{store_url}"\n', encoding="utf-8")
    return config


@pytest.fixture
def seeded(store_url: str) -> tuple[Engine, dict[str, str]]:
    """Customer 7 on its own account; customer 12 with two contacts (one removed earlier, re-added) and a third
    contact on a username login; all made by one run."""
    engine = open_store(store_url)
    run_id = start_run(engine)
    ids = {
        "own": seed(engine, "7", "biuro@siedem.example.pl", run_id=run_id),
        "anna": seed(engine, "12", "anna@dwanascie.example.pl", contact_id="1", contact_name="Anna Łęcka",
                     attributes={"credit_limit": "15000.00", "payment_terms": "przelew 14 dni"}, run_id=run_id),
        "old_jan": seed(engine, "12", "jan@dwanascie.example.pl", contact_id="2", status="removed"),
        "jan": seed(engine, "12", "jan@dwanascie.example.pl", contact_id="2", contact_name="Jan Żak", run_id=run_id),
        "k": seed(engine, "12", "k/0012", contact_id="3", contact_name="Kinga Sęk", email="kinga@dwanascie.example.pl",
                  run_id=run_id),
    }  # fmt: skip
    ids["run"] = str(run_id)
    with engine.begin() as conn:
        conn.execute(
            run_actions.insert(),
            [
                {"run_id": run_id, "erp_id": "12", "contact_id": "4", "action": "reject", "reason": "no_access"},
                {"run_id": run_id, "erp_id": "8", "contact_id": None, "action": "reject", "reason": "missing_tag"},
            ],
        )
    yield engine, ids
    engine.dispose()


# -- the queries ---------------------------------------------------------------------------------------------


def test_account_items_carry_the_contact_the_mail_address_and_the_attributes_as_an_object(
    seeded: tuple[Engine, dict[str, str]],
) -> None:
    """`contact_id` None for a per-customer account; `attributes` parsed (`{}` when none); `email` where mail goes."""
    engine, ids = seeded
    with engine.connect() as conn:
        by_id = {a["id"]: a for a in iter_accounts(conn)}
    own, anna, kinga = by_id[ids["own"]], by_id[ids["anna"]], by_id[ids["k"]]
    assert (own["contact_id"], own["contact_name"], own["email"], own["attributes"]) == (None, None, None, {})
    assert (anna["contact_id"], anna["contact_name"]) == ("1", "Anna Łęcka")
    assert anna["attributes"] == {"credit_limit": "15000.00", "payment_terms": "przelew 14 dni"}
    assert (kinga["login"], kinga["email"]) == ("k/0012", "kinga@dwanascie.example.pl")


def test_find_account_by_login_username_id_or_a_customer_with_one_live_account(
    seeded: tuple[Engine, dict[str, str]],
) -> None:
    """A username is found in any case and spacing; an ERP id names an account only when the customer has one live
    account; a customer with several (one per contact) is not one account, and `customer_accounts` lists them."""
    engine, ids = seeded
    with engine.connect() as conn:
        assert find_account(conn, " K/0012 ")["id"] == ids["k"]
        assert find_account(conn, "Anna@Dwanascie.example.pl")["id"] == ids["anna"]
        assert find_account(conn, ids["old_jan"])["status"] == "removed"
        assert find_account(conn, "7")["id"] == ids["own"]
        assert find_account(conn, "12") is None
        live = customer_accounts(conn, "12", live_only=True)
        every = customer_accounts(conn, "12")
    assert [a["contact_id"] for a in live] == ["1", "2", "3"]
    assert [a["id"] for a in every] == [ids["anna"], ids["old_jan"], ids["jan"], ids["k"]]


def test_actions_of_a_run_say_which_contact_each_concerns(seeded: tuple[Engine, dict[str, str]]) -> None:
    """Account changes take the contact from their account; rejections from their own row."""
    engine, ids = seeded
    with engine.connect() as conn:
        actions = list(actions_of_run(conn, int(ids["run"])))
    assert [(a["erp_id"], a["contact_id"], a["action"]) for a in actions] == [
        ("7", None, "create"), ("12", "1", "create"), ("12", "2", "create"), ("12", "3", "create"),
        ("12", "4", "reject"), ("8", None, "reject"),
    ]  # fmt: skip


# -- the commands on a seeded store --------------------------------------------------------------------------


def test_accounts_list_json_and_table_show_contacts_and_attributes(
    seeded: tuple[Engine, dict[str, str]], tmp_path: Path, store_url: str
) -> None:
    """`accounts list --json` items have `contact_id` (null for a customer's own) and `attributes` (an object);
    the table gains a contact column, which a store without contact accounts does not show."""
    _, ids = seeded
    config = store_config(tmp_path, store_url)
    items = {a["id"]: a for a in json_of(run(config, "accounts", "list", "--json"))}
    assert items[ids["own"]]["contact_id"] is None and items[ids["own"]]["attributes"] == {}
    assert items[ids["anna"]]["contact_id"] == "1"
    assert items[ids["anna"]]["attributes"] == {"credit_limit": "15000.00", "payment_terms": "przelew 14 dni"}
    assert items[ids["k"]]["email"] == "kinga@dwanascie.example.pl"
    table = run(config, "accounts", "list")
    assert table.returncode == 0, table.stderr
    assert "contact" in table.stdout.splitlines()[1] and "1 (Anna Łęcka)" in table.stdout
    customers_only = run(config, "accounts", "list", "--erp-id", "7")
    assert customers_only.returncode == 0 and "contact" not in customers_only.stdout


def test_accounts_show_of_a_contact_account_shows_its_contact_and_attributes(
    seeded: tuple[Engine, dict[str, str]], tmp_path: Path, store_url: str
) -> None:
    engine, ids = seeded
    config = store_config(tmp_path, store_url)
    shown = json_of(run(config, "accounts", "show", "anna@dwanascie.example.pl", "--json"))
    assert shown["id"] == ids["anna"] and shown["contact_id"] == "1" and shown["attributes"]["credit_limit"]
    assert [e["kind"] for e in shown["events"]] == ["created"]
    human = run(config, "accounts", "show", "K/0012")
    assert human.returncode == 0, human.stderr
    assert "Kinga Sęk" in human.stdout and "kinga@dwanascie.example.pl" in human.stdout
    anna = run(config, "accounts", "show", ids["anna"]).stdout
    assert "attributes.payment_terms" in anna and "przelew 14 dni" in anna and "15000.00" in anna


def test_accounts_show_of_a_customer_with_several_contacts_lists_them(
    seeded: tuple[Engine, dict[str, str]], tmp_path: Path, store_url: str
) -> None:
    """`accounts show 12`: three live accounts, so all three (no arbitrary pick); `--json` gives them in
    `accounts`; a customer with one account still shows that account."""
    _, ids = seeded
    config = store_config(tmp_path, store_url)
    listed = json_of(run(config, "accounts", "show", "12", "--json"))
    assert listed["erp_id"] == "12"
    assert [a["id"] for a in listed["accounts"]] == [ids["anna"], ids["jan"], ids["k"]]
    assert all("events" in a for a in listed["accounts"])
    human = run(config, "accounts", "show", "12")
    assert human.returncode == 0, human.stderr
    assert "3 accounts, one per contact person" in human.stdout and "2 (Jan Żak)" in human.stdout
    assert json_of(run(config, "accounts", "show", "7", "--json"))["id"] == ids["own"]


def test_history_show_has_a_contact_column_and_json_contact_ids(
    seeded: tuple[Engine, dict[str, str]], tmp_path: Path, store_url: str
) -> None:
    _, ids = seeded
    config = store_config(tmp_path, store_url)
    shown = json_of(run(config, "history", "show", ids["run"], "--json"))
    assert {(a["erp_id"], a["contact_id"], a["action"]) for a in shown["actions"]} >= {
        ("12", "4", "reject"), ("12", "1", "create"), ("7", None, "create"),
    }  # fmt: skip
    human = run(config, "history", "show", ids["run"])
    assert human.returncode == 0, human.stderr
    header = next(line for line in human.stdout.splitlines() if "action" in line and "reason" in line)
    assert "contact" in header
