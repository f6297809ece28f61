"""Quarantine: a record that cannot be read, judged or applied is set aside with its error while the run goes on
(exit 3, counted in the JSON summary); its live account is left exactly as it was; it is retried every run and
leaves the quarantine once fixed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.crash import integrator_json
from support.erp import SqliteErp, make_config

from integrator.config import Config
from integrator.store.db import open_store
from integrator.store.schema import accounts, quarantine
from integrator.sync import SyncResult, run_sync


class World:
    """An ERP, a store and a config, with the views these tests compare."""

    def __init__(self, erp: SqliteErp, url: str, tmp: Path, **sections: Any) -> None:
        self.erp = erp
        self.engine = open_store(url)
        self.config: Config = make_config(erp, url, tmp, **sections)

    def sync(self, **kwargs: Any) -> SyncResult:
        return run_sync(self.config, engine=self.engine, allow_mass_removal=True, **kwargs)

    def account(self, erp_id: int) -> dict[str, Any]:
        """The one account of a customer (these tests never close and reopen one)."""
        with self.engine.connect() as conn:
            [row] = conn.execute(sa.select(accounts).where(accounts.c.erp_id == str(erp_id))).mappings().all()
        return dict(row)

    def has_account(self, erp_id: int) -> bool:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(accounts.c.erp_id == str(erp_id))
            return bool(conn.execute(query).scalar_one())

    def quarantined(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {r["erp_id"]: dict(r) for r in conn.execute(sa.select(quarantine)).mappings()}


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 6):
        erp.add(erp_id, phone=f"60000000{erp_id}")
    return erp


def test_garbled_value_is_quarantined_through_the_cli_and_the_account_left_alone(
    erp: SqliteErp, tmp_path: Path
) -> None:
    """`active = "moze"` quarantines its record (exit 3, counted and explained in `--json`) while the others
    apply; the live account is not touched, not even removed though the tag went too; once fixed, the
    record leaves the quarantine and its pending change applies."""
    world = World(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    assert integrator_json(world.config, "sync")["created"] == 5
    before = world.account(2)
    erp.set(2, active="moze", tags="vip", phone="111")  # garbled, and also untagged and changed
    erp.set(3, phone="600999999")
    erp.add(6, active="chyba")  # a garbled newcomer gets no account
    erp.add(7)
    summary = integrator_json(world.config, "sync", code=3)
    assert (summary["status"], summary["quarantined"]) == ("quarantined", 2)
    assert (summary["created"], summary["updated"], summary["removed"]) == (1, 1, 0)
    errors = {q["erp_id"]: q["error"] for q in summary["quarantine"]}
    assert errors == {"2": "active: cannot read 'moze' as yes/no", "6": "active: cannot read 'chyba' as yes/no"}
    assert world.account(2) == before and not world.has_account(6)
    stored = world.quarantined()
    assert set(stored) == {"2", "6"} and "moze" in stored["2"]["error"] and stored["2"]["attempts"] == 1

    again = integrator_json(world.config, "sync", code=3)  # retried, still garbled: still set aside
    assert (again["quarantined"], again["created"], again["updated"], again["removed"]) == (2, 0, 0, 0)
    assert world.quarantined()["2"]["attempts"] == 2 and world.account(2) == before

    erp.set(2, active="1")
    erp.set(6, active="tak")
    fixed = integrator_json(world.config, "sync")
    assert (fixed["status"], fixed["quarantined"], fixed["removed"], fixed["created"]) == ("ok", 0, 1, 1)
    assert world.quarantined() == {}
    assert world.account(2)["removed_reason"] == "missing_tag" and world.has_account(6)


@pytest.fixture(params=["postgresql", "mariadb"])
def strict_store_url(request: pytest.FixtureRequest) -> str:
    """A store that enforces VARCHAR lengths (SQLite does not)."""
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url")


def test_value_the_store_rejects_quarantines_one_record_of_a_batch(
    erp: SqliteErp, strict_store_url: str, tmp_path: Path
) -> None:
    """A `symbol` longer than its VARCHAR(128) fails only its own create or update: the batch is retried row by
    row, the neighbours apply, the rejected update leaves the live account as it was, and fixing the value
    applies it and clears the quarantine."""
    world = World(erp, strict_store_url, tmp_path, store={"batch_size": 3})
    assert world.sync().created == 5
    before = world.account(2)
    long_symbol = "S" * 300
    erp.set(1, phone="601")
    erp.set(2, symbol=long_symbol, phone="602")  # an update the store rejects
    erp.set(3, phone="603")
    erp.add(6)
    erp.add(7, symbol=long_symbol)  # a create the store rejects
    erp.add(8)
    result = world.sync()
    assert (result.status, result.exit_code, result.quarantined) == ("quarantined", 3, 2)
    assert (result.created, result.updated, result.mails_queued) == (2, 2, 2)
    errors = {q["erp_id"]: q["error"] for q in result.quarantine}
    assert set(errors) == {"2", "7"} and all(e.startswith("could not apply: ") for e in errors.values())
    assert world.account(2) == before and not world.has_account(7)
    assert world.account(1)["phone"] == "601" and world.account(3)["phone"] == "603"

    assert world.sync().quarantined == 2  # retried every run
    assert world.quarantined()["7"]["attempts"] == 2

    erp.set(2, symbol="S-2")
    erp.set(7, symbol="S-7")
    fixed = world.sync()
    assert (fixed.status, fixed.created, fixed.updated, fixed.quarantined) == ("ok", 1, 1, 0)
    after = world.account(2)
    assert (after["symbol"], after["phone"], after["id"]) == ("S-2", "602", before["id"])
    assert world.quarantined() == {}


def test_rule_that_raises_on_a_value_quarantines_that_record(tmp_path: Path, sqlite_odbc: str) -> None:
    """A consultant rule on `discount` that cannot compare an absurd ERP value (1E+1000000 overflows) quarantines
    that record with the rule's name and error; its live account stays, and a sane value clears it."""
    with sqlite3.connect(tmp_path / "erp.db") as db:  # an ERP that keeps discounts as text, like many do
        db.execute(
            "CREATE TABLE customers (erp_id INTEGER PRIMARY KEY, name TEXT, email TEXT, tags TEXT, symbol TEXT,"
            " tax_id TEXT, phone TEXT, price_level TEXT, discount TEXT, sales_rep TEXT, sales_rep_email TEXT,"
            " active TEXT DEFAULT 1, locale TEXT)"
        )
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 5):
        erp.add(erp_id, discount="5")
    rule = {"name": "bez-rabatu", "field": "discount", "equals": "0", "reason": "no discount, no B2B"}
    world = World(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, rules={"exclude": [rule]})
    assert world.sync().created == 4
    before = world.account(2)
    erp.set(2, discount="1E+1000000")
    erp.set(3, discount="0")  # the rule itself still works on the others
    result = world.sync()
    assert (result.status, result.exit_code, result.quarantined, result.removed) == ("quarantined", 3, 1, 1)
    [item] = result.quarantine
    assert item["erp_id"] == "2" and "rule:bez-rabatu" in item["error"] and "Overflow" in item["error"]
    assert world.account(2) == before
    erp.set(2, discount="7,5")
    fixed = world.sync()
    assert (fixed.status, fixed.updated, fixed.quarantined) == ("ok", 1, 0)
    assert world.quarantined() == {} and str(world.account(2)["discount"]).startswith("7.5")


def test_fixing_a_record_and_syncing_only_it_clears_its_quarantine(erp: SqliteErp, tmp_path: Path) -> None:
    """`sync --only ERP_ID` after fixing a quarantined record applies it and takes it off the quarantine list,
    so `explain` no longer reports it; other customers' quarantine entries stay until they apply."""
    world = World(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    world.sync()
    erp.set(2, active="moze", phone="222")
    erp.set(4, active="moze")
    assert world.sync().quarantined == 2
    erp.set(2, active="1")
    result = world.sync(only="2")
    assert (result.status, result.updated, result.quarantined) == ("ok", 1, 0)
    assert world.account(2)["phone"] == "222"
    assert set(world.quarantined()) == {"4"}


def _csv_config(export: Path, store_url: str, tmp_path: Path) -> Config:
    """A config reading a `;`-separated CSV export into the given store."""
    from integrator.config import config_from_dict

    data = {
        "source": {"kind": "csv", "path": str(export), "delimiter": ";"},
        "store": {"url": store_url},
        "mail": {"backend": "file", "deliver_after_sync": False, "file": {"directory": str(tmp_path / "mail")}},
    }
    return config_from_dict(data, tmp_path / "config.toml")


def test_nul_character_quarantines_its_record_on_every_store(store_url: str, tmp_path: Path) -> None:
    """A NUL in a field (a CSV export can carry one) quarantines that record, naming the field: PostgreSQL
    refuses NUL in text, and one such value must not fail the whole run. A NUL in the erp_id makes the record
    keyless, so it can neither create an account nor remove one."""
    export = tmp_path / "kontrahenci.csv"
    export.write_text(
        "erp_id;name;email;tags\n"
        "1;Hurtownia Łódź;klient1@example.pl;b2b\n"
        "2;Sklep\x00Gęś;klient2@example.pl;b2b\n"
        "3;Delikatesy;klient3@example.pl;b2b\n",
        encoding="utf-8",
    )
    config = _csv_config(export, store_url, tmp_path)
    engine = open_store(store_url)
    result = run_sync(config, engine=engine)
    assert (result.status, result.created, result.quarantined) == ("quarantined", 2, 1)
    [item] = result.quarantine
    assert item["erp_id"] == "2" and item["error"] == "name: contains a NUL character (\\x00)"
    assert "\x00" not in item["error"] and item["origin"] == "kontrahenci.csv:line 3"

    export.write_text(export.read_text(encoding="utf-8").replace("Sklep\x00Gęś", "Sklep Gęś").replace("3;", "3\x00;"))
    again = run_sync(config, engine=engine, allow_mass_removal=True)
    assert (again.status, again.created, again.removed, again.quarantined) == ("quarantined", 1, 0, 1)
    assert "erp_id: contains a NUL character" in again.quarantine[0]["error"]
    with engine.connect() as conn:
        live = set(conn.execute(sa.select(accounts.c.erp_id).where(accounts.c.status != "removed")).scalars())
    assert live == {"1", "2", "3"}  # 3 kept: a keyless row may be it, so nobody is removed on a guess


def test_discounts_round_trip_and_an_absurd_one_is_quarantined_on_every_store(store_url: str, tmp_path: Path) -> None:
    """Discounts are created and updated exactly on every store; one a server store cannot hold (1E+20 against
    NUMERIC(9,4)) quarantines its own record when applied, never the staging of the whole run. (SQLite does not
    enforce a column's precision: it keeps the value.)"""
    from decimal import Decimal

    export = tmp_path / "kontrahenci.csv"

    def write(discounts: dict[int, str]) -> None:
        lines = ["erp_id;name;email;tags;discount"]
        lines += [f"{n};Firma {n};klient{n}@example.pl;b2b;{d}" for n, d in discounts.items()]
        export.write_text("\n".join(lines) + "\n", encoding="utf-8")

    config = _csv_config(export, store_url, tmp_path)
    engine = open_store(store_url)

    def discounts() -> dict[str, Decimal]:
        with engine.connect() as conn:
            return {e: Decimal(str(d)) for e, d in conn.execute(sa.select(accounts.c.erp_id, accounts.c.discount))}

    write({1: "12,5", 2: "5", 3: "1E+20"})
    first = run_sync(config, engine=engine)
    if store_url.startswith("sqlite"):
        assert (first.status, first.created, discounts()["3"]) == ("ok", 3, Decimal("1E+20"))
    else:
        assert (first.status, first.created, first.quarantined) == ("quarantined", 2, 1)
        assert first.quarantine[0]["erp_id"] == "3" and "could not apply" in first.quarantine[0]["error"]
        assert "3" not in discounts()
    assert (discounts()["1"], discounts()["2"]) == (Decimal("12.5"), Decimal("5"))
    write({1: "12.50", 2: "7.25", 3: "3"})
    second = run_sync(config, engine=engine)
    expected = (0, 2) if store_url.startswith("sqlite") else (1, 1)  # (created, updated)
    assert (second.status, second.created, second.updated, second.quarantined) == ("ok", *expected, 0)
    assert discounts() == {"1": Decimal("12.5"), "2": Decimal("7.25"), "3": Decimal("3")}
