"""The subiekt_gt, optima and comarch_xl presets end to end on replicas of their tables (schemas dbo and CDN):
SQLite through the SQLite3 ODBC driver, PostgreSQL through psqlODBC in a WIN1250 database (GT's and Optima's
varchar columns are in the Polish code page), synced by `integrator sync`.

One scenario for each: a tag added, removed and re-added (a new identity), a contact person added and switched
off, a contractor that is not a customer (GT: supplier only; Optima: its attribute set to NIE; XL: an archived
card) never gets an account, Polish names arrive intact, the customer's fields and attributes (credit limit,
payment terms) reach its contacts' accounts. Then each option that changes what is read: which e-mail (GT,
Optima), Optima's tag by group or category, XL's authorised_only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.erp_replicas import GtReplica, OptimaReplica, XlReplica
from support.preset_sync import live, sync, write_preset_config

from integrator.cli import main
from tests.conftest import PG_HOST, PG_PORT, require_odbc_driver, require_service

TAG = "Klient B2B"
INTEGRATOR = str(Path(sys.executable).with_name("integrator"))
ERPS = {"subiekt_gt": GtReplica, "optima": OptimaReplica, "comarch_xl": XlReplica}
CUSTOMER_FIELDS: dict[str, dict[str, Any]] = {
    "subiekt_gt": {"price_level": "Hurtowa Ś", "discount": Decimal("7.5"), "sales_rep": "Łukasz Dąbrowski",
                   "sales_rep_email": "lukasz@mojafirma.pl", "tax_id": "725-123-45-67"},
    "optima": {"price_level": "Hurtowa Ś", "discount": Decimal("7.5"), "sales_rep": "Łukasz Dąbrowski",
               "sales_rep_email": "lukasz@mojafirma.pl", "tax_id": "7251234567"},
    "comarch_xl": {"tax_id": "725-123-45-67"},
}  # fmt: skip
ATTRIBUTES: dict[str, dict[str, Any]] = {  # [source] attributes: credit limit and payment term in days
    "subiekt_gt": {"credit_limit": Decimal("20000"), "payment_terms": 14},
    "optima": {"credit_limit": Decimal("15000.5"), "payment_terms": 21},
    "comarch_xl": {},  # no names verified for XL
}


@pytest.fixture
def pg_win1250() -> Iterator[str]:
    """A fresh PostgreSQL database in the Polish Windows code page, as GT's and Optima's varchar text is."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    name = f"it_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'WIN1250' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
MARIADB = pytest.param("mariadb", marks=pytest.mark.mariadb)


@pytest.fixture(params=["sqlite", POSTGRES])
def engine_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | Path]:
    """The replica's engine and where it lives: SQLite and PostgreSQL, as the issue asks."""
    return replica_place(request, tmp_path)


@pytest.fixture(params=["sqlite", POSTGRES, MARIADB])
def any_engine_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | Path]:
    """Also MariaDB (MariaDB ODBC driver), for the full scenario of each preset."""
    return replica_place(request, tmp_path)


def replica_place(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | Path]:
    if request.param == "sqlite":
        require_odbc_driver("SQLite3")
        return "sqlite", tmp_path / "erp.db"
    if request.param == "mariadb":
        require_odbc_driver("MariaDB Unicode")
        return "mariadb", request.getfixturevalue("mariadb_database")
    return "postgres", request.getfixturevalue("pg_win1250")


def write_config(tmp_path: Path, erp: Any, options: str) -> Path:
    return write_preset_config(
        tmp_path, erp.connection_string, erp.preset, options, sorted(ATTRIBUTES[erp.preset]), tag=TAG
    )


def attributes_of(account: dict[str, Any]) -> dict[str, Any]:
    """An account's attributes, numbers compared by value: a decimal's scale is the engine's, and the SQLite
    ODBC driver hands over a computed column (Optima's CASE) as text."""
    found = json.loads(account["attributes"] or "{}")
    if found.get("credit_limit") is not None:
        found["credit_limit"] = Decimal(str(found["credit_limit"])).normalize()
    if found.get("payment_terms") is not None:
        found["payment_terms"] = int(found["payment_terms"])
    return found


def keys(*pairs: tuple[int, int]) -> set[tuple[str, str]]:
    return {(str(erp_id), str(contact_id)) for erp_id, contact_id in pairs}


@pytest.mark.parametrize("preset", sorted(ERPS))
def test_preset_syncs_its_replica(preset: str, any_engine_db: tuple[str, str | Path], tmp_path: Path) -> None:
    erp = ERPS[preset](*any_engine_db)
    zolta = erp.customer("Hurtownia Żółta Łódź", "zamowienia@zolta.pl", (TAG, "VIP"))
    lucja = erp.contact(zolta, "Łucja", "Wąs-Źdźbło", "lucja@zolta.pl")
    erp.contact(zolta, "Bez", "Maila", None)
    later = erp.customer("Później Ćma", "biuro@pozniej.pl", ("VIP",))
    jan = erp.contact(later, "Jan", "Ćwik", "jan@pozniej.pl")
    other = erp.not_a_customer("Dostawca Źródło", "dostawca@zrodlo.pl", (TAG,))
    erp.contact(other, "Ewa", "Ęś", "ewa@zrodlo.pl")
    config = write_config(tmp_path, erp, f'{{ contacts = true, tag = "{TAG}" }}')

    sync(config)
    first = live(config)
    assert set(first) == keys((zolta, lucja))
    account = first[(str(zolta), str(lucja))]
    assert (account["login"], account["contact_name"], account["name"]) == (
        "lucja@zolta.pl", "Łucja Wąs-Źdźbło", "Hurtownia Żółta Łódź"
    )  # fmt: skip
    expected = CUSTOMER_FIELDS[preset]
    got = {field: account[field] for field in expected}
    if "discount" in got:
        got["discount"] = Decimal(str(got["discount"]))
    assert got == expected
    assert attributes_of(account) == ATTRIBUTES[preset]

    erp.tag(later, TAG)  # tag added
    added = erp.contact(zolta, "Zenon", "Żak", "zenon@zolta.pl")  # a contact added
    sync(config)
    assert set(live(config)) == keys((zolta, lucja), (zolta, added), (later, jan))

    erp.switch_contact(zolta, added, active=False)  # ... and switched off
    erp.untag(zolta, TAG)  # tag removed
    sync(config)
    assert set(live(config)) == keys((later, jan))

    erp.tag(zolta, TAG)  # re-added: a brand-new identity
    sync(config)
    again = live(config)
    assert set(again) == keys((zolta, lucja), (later, jan))
    assert again[(str(zolta), str(lucja))]["id"] != account["id"]


def test_xl_authorised_only_leaves_contacts_not_authorised_to_order_out(tmp_path: Path, sqlite_odbc: str) -> None:
    erp = XlReplica("sqlite", tmp_path / "xl.db")
    firm = erp.customer("Hurtownia Ąę", "biuro@ae.pl", (TAG,))
    allowed = erp.contact(firm, "Anna", "Żak", "anna@ae.pl", authorised=True)
    refused = erp.contact(firm, "Olgierd", "Łoś", "olgierd@ae.pl", authorised=False)
    config = write_config(tmp_path, erp, f'{{ contacts = true, tag = "{TAG}", authorised_only = true }}')
    result = sync(config)
    assert set(live(config)) == keys((firm, allowed))
    assert {(r["erp_id"], r["contact_id"]): r["reasons"] for r in result["rejections"]} == {
        (str(firm), str(refused)): "no_access"
    }


def accounts_json(config: Path) -> list[dict[str, Any]]:
    """`integrator accounts list --json` through the installed command, as a consultant's script reads it."""
    done = subprocess.run(
        [INTEGRATOR, "accounts", "list", "--json", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def logins(config: Path) -> dict[str, str]:
    """erp_id -> login of each live per-customer account."""
    return {erp_id: account["login"] for (erp_id, _), account in live(config).items()}


def test_gt_email_source_contact_takes_the_main_contact_persons_email(
    engine_db: tuple[str, str | Path], tmp_path: Path
) -> None:
    """email_source = 'contact': the main contact person's (pk_Podstaw) e-mail, not another person's; a
    contractor without a main contact person keeps kh_EMail; the default 'main' is kh_EMail for all. The
    credit limit and payment term arrive in `accounts list --json`."""
    erp = GtReplica(*engine_db)
    zolta = erp.customer("Hurtownia Żółta Łódź", "biuro@zolta.pl", (TAG,))
    erp.contact(zolta, "Łucja", "Wąs", "lucja@zolta.pl")
    erp.contact(zolta, "Żaneta", "Główna", "zaneta.glowna@zolta.pl", main=True)
    alone = erp.customer("Sklep Ćma", "biuro@cma.pl", (TAG,))
    erp.contact(alone, "Jan", "Ćwik", "jan@cma.pl")
    by_main, by_contact = tmp_path / "main", tmp_path / "contact"
    by_main.mkdir(), by_contact.mkdir()
    main_config = write_config(by_main, erp, f'{{ tag = "{TAG}" }}')
    contact_config = write_config(by_contact, erp, f'{{ tag = "{TAG}", email_source = "contact" }}')

    sync(main_config)
    sync(contact_config)
    assert logins(main_config) == {str(zolta): "biuro@zolta.pl", str(alone): "biuro@cma.pl"}
    assert logins(contact_config) == {str(zolta): "zaneta.glowna@zolta.pl", str(alone): "biuro@cma.pl"}
    listed = {account["erp_id"]: account for account in accounts_json(contact_config)}
    assert {key: listed[str(zolta)][key] for key in ("sales_rep", "sales_rep_email")} == {
        "sales_rep": "Łukasz Dąbrowski", "sales_rep_email": "lukasz@mojafirma.pl"
    }  # fmt: skip
    attributes = listed[str(zolta)]["attributes"]
    assert (Decimal(str(attributes["credit_limit"])), attributes["payment_terms"]) == (Decimal("20000"), 14)


def test_optima_email_source_contact_takes_the_first_active_contact_persons_email(
    engine_db: tuple[str, str | Path], tmp_path: Path
) -> None:
    """email_source = 'contact': the first active KntOsoby row with an e-mail (one without, or switched off, is
    passed over); a contractor with none keeps Knt_Email. A contractor whose limit and term flags are off has
    no credit_limit or payment_terms; its own CDN.Rabaty discount outranks Knt_Upust."""
    erp = OptimaReplica(*engine_db)
    zolta = erp.customer("Hurtownia Żółta", "biuro@zolta.pl", (TAG,))
    erp.contact(zolta, "Bez", "Maila", None)
    off = erp.contact(zolta, "Olgierd", "Łoś", "olgierd@zolta.pl")
    erp.switch_contact(zolta, off, active=False)
    erp.contact(zolta, "Łucja", "Wąs", "lucja@zolta.pl")
    plain = erp.customer("Sklep Ćma", "biuro@cma.pl", (TAG,), credit=False)
    erp.discount(plain, Decimal("12.5"))
    config = write_config(tmp_path, erp, f'{{ tag = "{TAG}", email_source = "contact" }}')

    sync(config)
    assert logins(config) == {str(zolta): "lucja@zolta.pl", str(plain): "biuro@cma.pl"}
    found = live(config)
    assert attributes_of(found[(str(zolta), None)]) == ATTRIBUTES["optima"]
    assert attributes_of(found[(str(plain), None)]) == {"credit_limit": None, "payment_terms": None}
    # the contractor's CDN.Rabaty row outranks Knt_Upust (7.5), which the other keeps
    discounts = {erp_id: Decimal(str(account["discount"])) for (erp_id, _), account in found.items()}
    assert discounts == {str(zolta): Decimal("7.5"), str(plain): Decimal("12.5")}


def test_optima_tag_source_reads_the_attribute_the_group_or_the_category(
    engine_db: tuple[str, str | Path], tmp_path: Path
) -> None:
    """The same `tag` looked up where tag_source says: only the contractor tagged that way gets an account."""
    erp = OptimaReplica(*engine_db)
    by_attribute = erp.customer("Atrybut Ą", "a@firma.pl", (TAG,))
    by_group = erp.customer("Grupa Ę", "g@firma.pl", group=TAG)
    by_category = erp.customer("Kategoria Ó", "k@firma.pl", category=TAG)
    erp.customer("Nic Ź", "n@firma.pl", ("VIP",), group="DETAL", category="Detal")
    expected = {"attribute": by_attribute, "group": by_group, "category": by_category}
    for source, erp_id in expected.items():
        folder = tmp_path / source
        folder.mkdir()
        config = write_config(folder, erp, f'{{ tag = "{TAG}", tag_source = "{source}" }}')
        sync(config)
        assert set(logins(config)) == {str(erp_id)}, source


def test_a_value_outside_an_options_list_is_refused_before_reading(tmp_path: Path, sqlite_odbc: str) -> None:
    """email_source = 'invoice' (no preset offers it) is a config error naming the option and its values:
    exit 2, no run."""
    erp = OptimaReplica("sqlite", tmp_path / "optima.db")
    erp.customer("Hurtownia", "biuro@hurt.pl", (TAG,))
    config = write_config(tmp_path, erp, f'{{ tag = "{TAG}", email_source = "invoice" }}')
    done = CliRunner().invoke(main, ["sync", "--config", str(config)])
    assert done.exit_code == 2, done.output
    assert "'email_source' of preset 'optima' must be one of 'main', 'contact', got 'invoice'" in done.output
    assert not (tmp_path / "store.db").exists() or live(config) == {}
