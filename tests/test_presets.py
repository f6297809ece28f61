"""Every shipped preset is T-SQL SQL Server would accept (parsed with sqlglot) and reads as a preset file should:
a header naming its ERP and sources, typed options with defaults, a customers and a contacts query; and how a
preset's options and contacts reach the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrator.config import SourceConfig
from integrator.connectors.preset_files import available_presets, load_preset, read_preset
from integrator.connectors.sql_dialect import parse_tsql, translate
from integrator.errors import ConfigError

SHIPPED = available_presets()


def test_the_erp_presets_are_shipped() -> None:
    assert {"subiekt_nexo", "subiekt_gt", "optima", "comarch_xl"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_preset_parses_as_tsql_and_translates(name: str) -> None:
    """With its defaults (and contacts on), each query is one T-SQL statement that sqlglot parses, and it
    translates for every replica engine; the header names the ERP, its sources and what is inferred."""
    preset = read_preset(name)
    assert preset.erp, f"{name}: no '-- erp:' line"
    assert "Sources" in preset.header and "INFERRED" in preset.header, f"{name}: header must name sources and guesses"
    assert preset.contacts is not None and "contacts" in preset.options
    for part in ("customers", "contacts"):
        query = load_preset(name, {}, part=part)
        assert len(parse_tsql(query, f"preset {name!r} ({part})")) == 1
        for dialect in ("sqlite", "postgres", "mysql"):
            assert translate(query, dialect).startswith("SELECT")


def test_declared_options_are_typed_literals_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "erp.sql").write_text(
        "-- erp: Test ERP\n"
        "-- option tag = 'b2b': the tag\n"
        "-- option kind = 3: a kind id\n"
        "-- option source = 'main' | 'contact' | 'O''Neil': which e-mail\n"
        "-- option contacts = false: read contacts\n"
        "-- @customers\nSELECT 1 AS erp_id WHERE t = ${tag} AND k = ${kind} AND x = ${raw} AND s = ${source}\n"
        "-- @contacts\nSELECT 1 AS erp_id, 2 AS contact_id WHERE t = ${tag}\n",
        encoding="utf-8",
    )
    assert load_preset("erp", {"raw": "y"}, tmp_path) == (
        "SELECT 1 AS erp_id WHERE t = N'b2b' AND k = 3 AND x = y AND s = N'main'"
    )
    assert load_preset("erp", {"raw": "y", "source": "O'Neil"}, tmp_path).endswith("s = N'O''Neil'")
    assert read_preset("erp", tmp_path).options["source"].choices == ("main", "contact", "O'Neil")
    assert load_preset("erp", {"raw": "y", "tag": "O'Neil ż"}, tmp_path, part="contacts") == (
        "SELECT 1 AS erp_id, 2 AS contact_id WHERE t = N'O''Neil ż'"
    )
    with pytest.raises(ConfigError) as caught:
        load_preset("erp", {"kind": "3", "contacts": "yes", "tga": "x", "source": "invoice"}, tmp_path)
    message = str(caught.value)
    assert "'kind' of preset 'erp' must be a whole number, got '3'" in message
    assert "'contacts' of preset 'erp' must be true or false, got 'yes'" in message
    assert "'tga' is not an option of preset 'erp'" in message
    assert "preset 'erp' needs 'raw'" in message
    assert "'source' of preset 'erp' must be one of 'main', 'contact', \"O'Neil\", got 'invoice'" in message


def test_contacts_option_brings_the_presets_contacts_query() -> None:
    """`preset_options.contacts = true` makes the preset's contacts query the source's contacts_query (so the
    sync, check and explain all see a contacts source); off by default; not together with a query of one's own."""
    base = {"kind": "odbc", "connection_string": "Driver=SQLite3;Database=x.db", "preset": "subiekt_nexo"}
    assert SourceConfig(**base).contacts_query is None
    source = SourceConfig(**base, preset_options={"contacts": True, "tag": "hurt"})
    assert source.contacts_query == load_preset("subiekt_nexo", {"tag": "hurt"}, part="contacts")
    assert "Przedstawiciele" in source.contacts_query
    with pytest.raises(ValueError, match="either `contacts_query` or a preset's contacts"):
        SourceConfig(**base, preset_options={"contacts": True}, contacts_query="SELECT 1")
    with pytest.raises(ValueError, match="'contacts' of preset 'subiekt_nexo' must be true or false"):
        SourceConfig(**base, preset_options={"contacts": "yes"})


def test_readme_grants_exactly_the_tables_each_preset_reads() -> None:
    """README's GRANT table for the read-only login lists, per preset, every table and view it reads, no more."""
    import re

    from integrator.connectors.preset_schema import columns_used

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    granted = {}
    for name, cells in re.findall(r"^\s*\| `(\w+)` \| (`\w+\.` .*) \|$", readme, re.MULTILINE):
        schema, *tables = re.findall(r"`([^`]+)`", cells)
        granted[name] = {f"{schema}{table}" for table in tables}
    for name in SHIPPED:
        needed = {**columns_used(load_preset(name, {})), **columns_used(load_preset(name, {}, part="contacts"))}
        assert granted.get(name) == {f"{schema}.{table}" for schema, table in needed}, name


def test_a_source_with_the_presets_contacts_validates_again() -> None:
    """A validated source dumped and validated again (a copy, a job handed to another process) stays valid."""
    base = {"kind": "odbc", "connection_string": "Driver=SQLite3;Database=x.db", "preset": "subiekt_nexo"}
    source = SourceConfig(**base, preset_options={"contacts": True})
    assert SourceConfig.model_validate(source.model_dump()) == source
