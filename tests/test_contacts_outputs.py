"""What a person sees of contacts, usernames and attributes outside the sync: the account queries, `accounts
list|show`, `history show`, `explain`, `report`, the mail templates' variables and the demo. Store-level tests seed
accounts as the sync leaves them; the commands run as the installed `integrator` executable."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from support.erp import SqliteErp
from support.mailstore import FAST_RETRY, mail_config, mail_row, queue

from integrator.clock import utcnow
from integrator.identity import identity_key
from integrator.mail.delivery import deliver_pending
from integrator.mail.templates import check_templates
from integrator.portal import resend_activation, reset_password
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


# -- mail ------------------------------------------------------------------------------------------------------


def delivered(folder: Path) -> list[email.message.EmailMessage]:
    parser = email.parser.BytesParser(policy=email.policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


def text_of(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


@pytest.mark.parametrize("locale", ["pl", "en"])
def test_a_contacts_activation_greets_the_person_and_shows_the_username_while_going_to_the_email(
    tmp_path: Path, locale: str
) -> None:
    """A username account's mail is queued to its e-mail (as the sync does): it is delivered, not cancelled as a
    changed login; the mail greets the contact person by name, is addressed to them, names their company and
    shows the username as the login; a template can read the attributes."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    account_id = seed(engine, "12", "k/0012", contact_id="3", contact_name="Łucja Wąsik-Żak",
                      email="lucja@dwanascie.example.pl", attributes={"credit_limit": "15000.00"})  # fmt: skip
    queue(engine, account_id, recipient="lucja@dwanascie.example.pl", locale=locale)
    own = seed(engine, "7", "biuro@siedem.example.pl")
    queue(engine, own, locale=locale)
    overrides = tmp_path / "templates" / locale
    overrides.mkdir(parents=True)
    subject = "Limit {{ attributes.get('credit_limit', 'none') }}"  # (undefined variables are errors)
    (overrides / "activation_link.subject.j2").write_text(subject, encoding="utf-8")
    folder = tmp_path / "mail"
    config = mail_config(tmp_path, url, backend="file", file={"directory": str(folder)},
                         templates_dir=str(tmp_path / "templates"))  # fmt: skip
    report = deliver_pending(engine, config, retry=FAST_RETRY)
    assert (report.sent, report.cancelled) == (2, 0)
    contact, customer = delivered(folder)
    assert contact["To"].addresses[0].addr_spec == "lucja@dwanascie.example.pl"
    assert contact["To"].addresses[0].display_name == "Łucja Wąsik-Żak"
    assert contact["Subject"] == "Limit 15000.00" and customer["Subject"] == "Limit none"
    body = text_of(contact)
    greeting = {"pl": "Dzień dobry, Łucja Wąsik-Żak,", "en": "Hello Łucja Wąsik-Żak,"}[locale]
    assert body.startswith(greeting) and "Firma 12 sp. z o.o." in body
    assert "Login: k/0012" in body and "lucja@dwanascie" not in body
    plain = text_of(customer)
    assert plain.startswith({"pl": "Dzień dobry,\n", "en": "Hello,\n"}[locale]) and "Firma 7 sp. z o.o." in plain
    engine.dispose()


def test_ops_credentials_for_a_username_account_go_to_its_email(tmp_path: Path) -> None:
    """`resend-activation` and `reset-password` find a username account by its username and queue the mail to
    its e-mail; a second request hurries that mail instead of queueing another."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    pending = seed(engine, "12", "k/0012", contact_id="3", email="kinga@dwanascie.example.pl")
    active = seed(engine, "12", "k/0013", contact_id="4", email="tomasz@dwanascie.example.pl", status="active")
    first = resend_activation(engine, "K/0012", "ops")
    assert resend_activation(engine, "k/0012", "ops") == first
    reset = reset_password(engine, "k/0013", "ops")
    assert mail_row(engine, first)["recipient"] == "kinga@dwanascie.example.pl"
    assert mail_row(engine, reset)["recipient"] == "tomasz@dwanascie.example.pl"
    assert {mail_row(engine, m)["account_id"] for m in (first, reset)} == {pending, active}
    engine.dispose()


def test_check_templates_renders_a_contact_persons_mail_too(tmp_path: Path) -> None:
    """An override broken only where an account has a contact person is found at setup, not in a customer's mail."""
    folder = tmp_path / "templates" / "pl"
    folder.mkdir(parents=True)
    broken = "Dzień dobry{% if contact_name %}, {{ contact_nmae }}{% endif %},\n{{ link }}\n"
    (folder / "activation_link.txt.j2").write_text(broken, encoding="utf-8")
    config = mail_config(tmp_path, "sqlite://", templates_dir=str(tmp_path / "templates"))
    problems = check_templates(config)
    assert len(problems) == 1 and "pl/activation_link" in problems[0] and "contact_nmae" in problems[0]


# -- explain and report with a contacts source (the sync's own records) -------------------------------------------


def contacts_site(tmp_path: Path, *, login: str = "email") -> tuple[SqliteErp, Path]:
    """Customer 1 with three contacts (one eligible, one with access off, one inactive) and attributes; 2 untagged
    and inactive;
    3 and 4 whose contacts share an e-mail (3 keeps it, so 4 has no eligible contact); 5 tagged without contacts;
    a contact of customer 9, which the customer query does not return. Config file next to the ERP."""
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(1, credit_limit="15000.00", payment_terms="przelew 14 dni, płatne w złotych", username="k/0001")
    erp.add(2, tags="vip", active=0)
    erp.add(3)
    erp.add(4)
    erp.add(5)
    erp.add_contact(1, 1, name="Anna Łęcka", username="anna.l")
    erp.add_contact(1, 2, name="Jan Żak", access=0)
    erp.add_contact(1, 3, name="Łucja Sęk", active=0)
    erp.add_contact(2, 1)
    erp.add_contact(3, 1, email="wspolny@example.pl", username="k/0003")
    erp.add_contact(4, 1, email=" Wspolny@Example.pl ", username="k/0003")
    erp.add_contact(9, 1)
    source = erp.contacts_source("username", "credit_limit", "payment_terms")
    lines = ["[source]", *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in source.items()),
             'attributes = ["credit_limit", "payment_terms"]', "[accounts]", f'login = "{login}"',
             "[mail]", "deliver_after_sync = false"]  # fmt: skip
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return erp, config


def contact_of(explained: dict[str, Any], contact_id: str) -> dict[str, Any]:
    [found] = [c for c in explained["contacts"] if c["contact_id"] == contact_id]
    return found


def test_explain_gives_the_customers_verdict_and_each_contacts_before_and_after_a_sync(
    tmp_path: Path, sqlite_odbc: str
) -> None:
    """Before any sync the contest already runs over every contact; after it each contact shows its account,
    and a contact deleted from the ERP stays listed with its (still live) account, as not in the source."""
    erp, config = contacts_site(tmp_path)
    before = json_of(run(config, "explain", "1", "--json"))
    assert before["in_source"] and before["eligible"] and before["login"] is None
    assert [r["rule"] for r in before["rules"]] == ["tag", "active"]
    assert {c["contact_id"]: (c["eligible"], c["reasons"]) for c in before["contacts"]} == {
        "1": (True, []), "2": (False, ["no_access"]), "3": (False, ["contact_inactive"]),
    }  # fmt: skip
    assert contact_of(before, "1")["name"] == "Anna Łęcka" and contact_of(before, "1")["account"] is None
    assert {r["rule"] for r in contact_of(before, "2")["rules"]} >= {"customer", "tag", "contact", "email"}
    four = json_of(run(config, "explain", "4", "--json"))
    assert contact_of(four, "1")["reasons"] == ["duplicate_email"] and not contact_of(four, "1")["eligible"]
    assert contact_of(four, "1")["login_held_by"] == {"erp_id": "3", "contact_id": "1"}

    assert json_of(run(config, "sync", "--json"))["created"] == 2
    after = json_of(run(config, "explain", "1", "--json"))
    anna = contact_of(after, "1")["account"]
    assert anna["status"] == "pending_activation" and anna["login"] == "osoba1.k1@example.pl"
    [identity] = after["identities"]
    assert identity["id"] == anna["id"] and identity["contact_id"] == "1"
    assert identity["attributes"]["payment_terms"] == "przelew 14 dni, płatne w złotych"
    assert {(a["contact_id"], a["reason"]) for a in after["last_actions"]} == {("2", "no_access"),
                                                                               ("3", "contact_inactive")}  # fmt: skip
    human = run(config, "explain", "1")
    assert human.returncode == 0, human.stderr
    assert human.stdout.splitlines()[0].startswith("1: eligible")
    assert "Contacts" in human.stdout and "whose website access is switched off" in human.stdout
    assert "contact 1 (Anna Łęcka)" in human.stdout and "przelew 14 dni, płatne w złotych" in human.stdout

    erp.delete_contact(1, 1)
    gone = contact_of(json_of(run(config, "explain", "1", "--json")), "1")
    assert (gone["in_source"], gone["account"]["id"]) == (False, anna["id"])


def test_explain_names_what_a_contacts_customer_lacks(tmp_path: Path, sqlite_odbc: str) -> None:
    """A contact whose customer the query does not return is explained (not "not found"); a customer without an
    eligible contact, or not eligible itself, says so in its first line."""
    _, config = contacts_site(tmp_path)
    nine = run(config, "explain", "9")
    assert nine.returncode == 0, nine.stderr
    assert "not returned by the customer query" in nine.stdout and "customer query does not return" in nine.stdout
    assert contact_of(json_of(run(config, "explain", "9", "--json")), "1")["reasons"] == ["unknown_customer"]
    assert run(config, "explain", "5").stdout.startswith("5: eligible, but none of its contact persons is")
    assert run(config, "explain", "2").stdout.startswith("2: not eligible (does not carry the tag b2b")
    two = json_of(run(config, "explain", "2", "--json"))  # judged on its own row, fields and all
    assert {r["rule"]: r["passed"] for r in two["rules"]} == {"tag": False, "active": False}
    five = json_of(run(config, "explain", "5", "--json"))
    assert (five["reasons"], five["contacts"]) == (["no_eligible_contact"], [])


def test_report_has_a_row_per_contact_and_agrees_with_the_sync(tmp_path: Path, sqlite_odbc: str) -> None:
    """One row per contact (with contact_id and name), plus a customer's own row where none of its contacts can
    have an account; every rejection of a dry run is in the report with the same reasons."""
    _, config = contacts_site(tmp_path)
    planned = json_of(run(config, "sync", "--dry-run", "--json"))
    done = run(config, "report", "--format", "json")
    rows = {(r["erp_id"], r["contact_id"]): r for r in json.loads(done.stdout)}
    assert list(rows) == [("1", "1"), ("1", "2"), ("1", "3"), ("2", None), ("2", "1"), ("3", "1"), ("4", "1"),
                          ("5", None), ("9", "1")]  # fmt: skip
    assert rows[("1", "1")]["eligible"] and rows[("1", "1")]["contact_name"] == "Anna Łęcka"
    assert rows[("2", None)]["name"] == rows[("2", "1")]["name"] == "Firma 2 sp. z o.o."
    assert rows[("5", None)]["reasons"] == "no_eligible_contact" and rows[("5", None)]["name"] == "Firma 5 sp. z o.o."
    for rejection in planned["rejections"]:
        assert rows[(rejection["erp_id"], rejection["contact_id"])]["reasons"] == rejection["reasons"]
    assert {r for r, row in rows.items() if row["eligible"]} == {("1", "1"), ("3", "1")}
    assert planned["created"] == 2
    csv_text = run(config, "report").stdout
    assert csv_text.splitlines()[0].endswith(",contact_id,contact_name")


def test_username_logins_are_judged_and_contested_like_the_sync(tmp_path: Path, sqlite_odbc: str) -> None:
    """With `login = "username"` explain and report use the username (the contact's, else its customer's): a contact
    without one is missing_username, two contacts with one are duplicate_username."""
    erp, config = contacts_site(tmp_path, login="username")
    erp.set(3, username=None)
    explained = json_of(run(config, "explain", "1", "--json"))
    assert contact_of(explained, "1")["login"] == "anna.l"
    assert contact_of(explained, "1")["eligible"]
    rows = {(r["erp_id"], r["contact_id"]): r for r in json.loads(run(config, "report", "--format", "json").stdout)}
    assert rows[("4", "1")]["reasons"] == "duplicate_username" and rows[("3", "1")]["login"] == "k/0003"
    erp.set_contact(3, 1, username=None)
    erp.set_contact(4, 1, username=None)
    rows = {(r["erp_id"], r["contact_id"]): r for r in json.loads(run(config, "report", "--format", "json").stdout)}
    assert rows[("3", "1")]["reasons"] == "missing_username"
    assert rows[("4", "1")]["login"] == "" and "missing_username" in rows[("4", "1")]["reasons"]


def test_explain_without_contacts_judges_a_missing_username(tmp_path: Path, sqlite_odbc: str) -> None:
    """Per-customer accounts with `login = "username"`: explain runs the sync's username rule too."""
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(1, username="k/0001")
    erp.add(2)
    source = erp.source(query="SELECT erp_id, name, email, tags, active, username FROM customers")
    config = tmp_path / "config.toml"
    config.write_text("[source]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in source.items())
                      + '[accounts]\nlogin = "username"\n', encoding="utf-8")  # fmt: skip
    one, two = (json_of(run(config, "explain", erp_id, "--json")) for erp_id in ("1", "2"))
    assert (one["eligible"], one["login"], one["contacts"]) == (True, "k/0001", None)
    assert (two["eligible"], two["reasons"]) == (False, ["missing_username"])
    assert {r["rule"]: r["passed"] for r in two["rules"]}["username"] is False
