"""The subiekt_nexo preset end to end: a replica of nexo's tables (schema ModelDanychContainer) on SQLite through
the SQLite3 ODBC driver and on PostgreSQL through psqlODBC, synced by the installed `integrator sync`.

The same preset text runs on both (translated from T-SQL); cechy resolve by name, e-mails by contact kind name,
contact persons are Przedstawiciele, the own-company row never gets an account, Polish names arrive intact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from support.nexo_replica import NexoReplica
from support.preset_sync import live, sync, write_preset_config

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def write_config(tmp_path: Path, nexo: NexoReplica, options: str) -> Path:
    return write_preset_config(
        tmp_path, nexo.connection_string, "subiekt_nexo", options, ["credit_limit", "payment_terms"]
    )


def installed_sync(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [INTEGRATOR, "sync", "--json", "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_contacts_follow_cechy_and_persons_through_integrator_sync(nexo: NexoReplica, tmp_path: Path) -> None:
    """Tag added, removed, re-added; a contact added and switched off; the own company never gets an account."""
    own = nexo.company("MojaFirma", "Moja Firma Sp. z o.o.", email="biuro@mojafirma.pl", tags=("b2b",), own=True)
    nexo.representative(own, "Szef", "Własny", "szef@mojafirma.pl")
    zolta = nexo.company(
        "Żółta Łódź", "Hurtownia Żółta Łódź Sp. z o.o.", email="zamowienia@zolta.pl", nip="7251234567",
        tags=("VIP", "b2b", "hurt"), ZezwalajNaKredytKupiecki=1, LimitKredytuKupieckiego=Decimal("15000.50"),
        TerminPlatnosciSprzedaz=14,
    )  # fmt: skip
    nexo.pricing(zolta, "Hurtowa Ś", Decimal("12.5"))
    nexo.sales_rep(zolta, "Łukasz Dąbrowski", "lukasz.dabrowski@mojafirma.pl")
    lucja = nexo.representative(zolta, "Łucja", "Wąs-Źdźbło", "lucja@zolta.pl")
    nexo.representative(zolta, "Bez", "Maila", None)
    later = nexo.company("Później", "Później S.A.", email="biuro@pozniej.pl", tags=("VIP",))
    jan = nexo.representative(later, "Jan", "Ćwik", "jan@pozniej.pl")
    config = write_config(tmp_path, nexo, "{ contacts = true }")

    installed_sync(config)
    accounts_now = live(config)
    assert set(accounts_now) == {(str(zolta), str(lucja))}
    account = accounts_now[(str(zolta), str(lucja))]
    assert (account["login"], account["contact_name"], account["name"]) == (
        "lucja@zolta.pl", "Łucja Wąs-Źdźbło", "Hurtownia Żółta Łódź Sp. z o.o."
    )  # fmt: skip
    assert (account["tax_id"], account["price_level"], account["sales_rep"], account["sales_rep_email"]) == (
        "7251234567", "Hurtowa Ś", "Łukasz Dąbrowski", "lukasz.dabrowski@mojafirma.pl"
    )  # fmt: skip
    assert Decimal(str(account["discount"])) == Decimal("12.5")
    attributes = json.loads(account["attributes"])  # an exact decimal: its scale is the engine's (numeric(19,6))
    assert (Decimal(attributes["credit_limit"]), attributes["payment_terms"]) == (Decimal("15000.50"), 14)

    nexo.tag(later, "b2b")  # tag added
    added = nexo.representative(zolta, "Zenon", "Żak", "zenon@zolta.pl")  # a contact added
    sync(config)
    assert set(live(config)) == {(str(zolta), str(lucja)), (str(zolta), str(added)), (str(later), str(jan))}

    nexo.switch_representative(added, active=False)  # ... and switched off
    nexo.untag(zolta, "b2b")  # tag removed: all of its contacts lose access
    sync(config)
    assert set(live(config)) == {(str(later), str(jan))}

    nexo.tag(zolta, "b2b")  # re-added: a brand-new identity
    sync(config)
    again = live(config)
    assert set(again) == {(str(zolta), str(lucja)), (str(later), str(jan))}
    assert again[(str(zolta), str(lucja))]["id"] != account["id"]
    assert not any(erp_id == str(own) for erp_id, _ in again)


def test_per_customer_accounts_and_options_resolved_by_name(nexo: NexoReplica, tmp_path: Path) -> None:
    """Without contacts: one account per tagged customer with its primary e-mail; a tag and an e-mail kind named
    otherwise (an apostrophe in the tag, Polish letters in the kind) are found by name through the options."""
    nexo.db.update("RodzajeKontaktu", {"Id": nexo.email_kind}, Nazwa="Poczta e-mail")
    own = nexo.company("MojaFirma", "Moja Firma", email="biuro@mojafirma.pl", tags=("Klient O'Neil B2B",), own=True)
    tagged = nexo.company("Ąę", "Spółdzielnia Ąę Óó", email="Biuro@Spoldzielnia.PL", tags=("Klient O'Neil B2B",))
    inactive = nexo.company("Nieaktywna", "Nieaktywna", email="x@nieaktywna.pl", tags=("Klient O'Neil B2B",),
                            active=False)  # fmt: skip
    nexo.company("Bez cechy", "Bez cechy", email="y@bezcechy.pl", tags=("b2b",))
    config = write_config(tmp_path, nexo, """{ tag = "Klient O'Neil B2B", email_kind = "Poczta e-mail" }""")
    config.write_text(config.read_text() + '[rules]\ntag = "Klient O\'Neil B2B"\n', encoding="utf-8")

    result = sync(config)
    assert set(live(config)) == {(str(tagged), None)}
    assert live(config)[(str(tagged), None)]["login"] == "biuro@spoldzielnia.pl"
    assert live(config)[(str(tagged), None)]["name"] == "Spółdzielnia Ąę Óó"
    assert str(own) not in json.dumps(result.get("rejections", []))  # not even a candidate
    assert inactive not in {int(erp_id) for erp_id, _ in live(config)}
