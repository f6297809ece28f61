"""A preset checks the ERP database has every table and column it reads before reading anything: `integrator
check` names each missing one (a step of its own, before the records), `integrator sync` exits 2 without
starting a run. On replicas through the SQLite3 ODBC driver and psqlODBC."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from support.erp_replicas import GtReplica
from support.nexo_replica import NexoReplica

from integrator.cli import main
from integrator.connectors.preset_files import load_preset
from integrator.connectors.preset_schema import columns_used, missing
from integrator.store.db import open_store
from integrator.store.schema import accounts, runs
from tests.test_presets_nexo import write_config


def test_columns_are_resolved_through_aliases_and_correlated_subqueries() -> None:
    sql = """SELECT p.Id AS erp_id,
                    (SELECT TOP 1 k.Wartosc FROM S.Kontakty AS k WHERE k.Podmiot_Id = p.Id ORDER BY k.Id) AS email,
                    CASE WHEN EXISTS (SELECT 1 FROM S.CechaPodmiot cp WHERE cp.Podmioty_Id = p.Id) THEN 1 END AS t
             FROM S.Podmioty AS p LEFT JOIN Firmy f ON f.Firma_Podmiot_Id = p.Id"""
    assert columns_used(sql) == {
        ("S", "Podmioty"): {"Id"},
        ("S", "Kontakty"): {"Wartosc", "Podmiot_Id", "Id"},
        ("S", "CechaPodmiot"): {"Podmioty_Id"},
        ("", "Firmy"): {"Firma_Podmiot_Id"},
    }
    needed = columns_used(load_preset("subiekt_nexo", {}, part="contacts"))
    assert needed[("ModelDanychContainer", "Przedstawiciele")] >= {"Firma_Id", "Osoba_Id", "PrzypisanyEmail_Id"}


def test_missing_compares_as_the_engine_does() -> None:
    needed = {("CDN", "KntOsoby"): {"KnO_Email", "KnO_GSM"}, ("CDN", "DefCeny"): {"DfC_Lp"}}
    present = [("cdn", "kntosoby", "kno_email"), ("CDN", "KntOsoby", "KnO_Email")]
    assert missing(needed, present, None) == ["CDN.DefCeny (table or view)", "CDN.KntOsoby.KnO_GSM (column)"]
    assert missing(needed, present[:1], "postgres") == ["CDN.DefCeny (table or view)", "CDN.KntOsoby (table or view)"]
    assert missing({("ModelDanychContainer", "Osoby"): {"Imie"}}, [("", "Osoby", "imie")], "sqlite") == []
    # MariaDB: the schema is the connected database, whatever its name; only its tables are listed
    assert missing({("CDN", "KntOsoby"): {"KnO_Email"}}, [("erp_firma", "KntOsoby", "KnO_Email")], "mysql") == []
    assert missing({("CDN", "KntOsoby"): {"KnO_GSM"}}, [("erp_firma", "KntOsoby", "KnO_Email")], "mysql") == [
        "CDN.KntOsoby.KnO_GSM (column)"
    ]


def test_a_missing_column_is_named_by_check_and_stops_sync_with_exit_2(nexo: NexoReplica, tmp_path: Path) -> None:
    firm = nexo.company("Żółta", "Hurtownia Żółta", email="biuro@zolta.pl", tags=("b2b",))
    nexo.representative(firm, "Łucja", "Wąs", "lucja@zolta.pl")
    config = write_config(tmp_path, nexo, "{ contacts = true }")
    fits = CliRunner().invoke(main, ["check", "--json", "--config", str(config)])
    report = json.loads(fits.stdout)
    step = next(check for check in report["checks"] if check["check"] == "preset schema")
    assert step["ok"] == "yes" and "all 12 tables and 46 columns" in step["detail"]
    assert [contact["login"] for contact in report["contacts"]] == ["lucja@zolta.pl"]

    nexo.db.drop_column("Podmioty", "NIP")  # a column of the customers query
    nexo.db.drop_column("Osoby", "Imie")  # ... and one only the contacts query reads
    checked = CliRunner().invoke(main, ["check", "--json", "--config", str(config)])
    assert checked.exit_code == 1
    report = json.loads(checked.stdout)
    step = next(check for check in report["checks"] if check["check"] == "preset schema")
    assert step["ok"] == "no"
    assert "ModelDanychContainer.Podmioty.NIP (column)" in step["detail"]
    assert "ModelDanychContainer.Osoby.Imie (column)" in step["detail"]
    assert [check["check"] for check in report["checks"] if check["check"] in ("source", "contacts")] == []

    synced = CliRunner().invoke(main, ["sync", "--config", str(config)])
    assert synced.exit_code == 2
    assert "ModelDanychContainer.Podmioty.NIP (column)" in synced.stderr
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as connection:  # no run started, nothing written
        assert connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 0
        assert connection.execute(sa.select(sa.func.count()).select_from(accounts)).scalar() == 0
    engine.dispose()


def test_a_missing_view_is_named(tmp_path: Path, sqlite_odbc: str) -> None:
    """GT's price levels come from a view (vwPoziomyCenWaluty); a login that may not see it has it missing."""
    erp = GtReplica("sqlite", tmp_path / "gt.db")
    erp.customer("Hurtownia Ąę", "biuro@ae.pl", ("b2b",))
    erp.db.drop_table("vwPoziomyCenWaluty")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[source]\nkind = "odbc"\nconnection_string = "{erp.connection_string}"\npreset = "subiekt_gt"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n',
        encoding="utf-8",
    )
    synced = CliRunner().invoke(main, ["sync", "--json", "--config", str(config)])
    assert synced.exit_code == 2
    assert "dbo.vwPoziomyCenWaluty (table or view)" in json.loads(synced.stdout)["message"]
