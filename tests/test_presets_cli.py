"""`integrator presets list` and `presets show` through the installed command: no config needed, the SQL shown
is the preset's T-SQL with the options applied and parses as one statement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from integrator.cli import main
from integrator.connectors.preset_files import available_presets, load_preset, read_preset
from integrator.connectors.sql_dialect import parse_tsql

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INTEGRATOR, *args], capture_output=True, text=True, timeout=120, check=False)


def test_list_names_every_preset_and_its_erp(tmp_path: Path) -> None:
    done = run("presets", "list", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [item["name"] for item in listed] == available_presets()
    nexo = next(item for item in listed if item["name"] == "subiekt_nexo")
    assert nexo["erp"] == read_preset("subiekt_nexo").erp and "nexo" in nexo["erp"]
    assert nexo["options"] == {"tag": "b2b", "email_kind": "E-mail", "contacts": False}
    assert nexo["option_values"] == {}  # email_kind is any contact kind's name
    optima = next(item for item in listed if item["name"] == "optima")
    assert optima["options"]["tag_source"] == "attribute" and optima["options"]["email_source"] == "main"
    assert optima["option_values"] == {
        "tag_source": ["attribute", "group", "category"], "email_source": ["main", "contact"]
    }  # fmt: skip
    table = CliRunner().invoke(main, ["presets", "list"])
    assert table.exit_code == 0 and "subiekt_nexo" in table.output and "Subiekt nexo" in table.output


def test_show_prints_the_header_and_the_query_with_options_applied() -> None:
    done = run(
        "presets", "show", "subiekt_nexo", "--contacts", "--option", "email_kind=Poczta", "--option", "contacts=true"
    )
    assert done.returncode == 0, done.stderr
    assert "-- Sources" in done.stdout and "INFERRED" in done.stdout
    expected = load_preset("subiekt_nexo", {"email_kind": "Poczta"}, part="contacts")
    assert done.stdout.rstrip().endswith(expected)
    assert "N'Poczta'" in done.stdout
    assert len(parse_tsql(done.stdout)) == 1  # pasted whole into a query tool, it is one statement
    customers = CliRunner().invoke(main, ["presets", "show", "subiekt_nexo", "--option", "tag=Klient B2B"])
    assert customers.exit_code == 0
    assert customers.output.rstrip().endswith(load_preset("subiekt_nexo", {"tag": "Klient B2B"}))


def test_show_errors_name_the_preset_or_option() -> None:
    unknown = CliRunner().invoke(main, ["presets", "show", "subiekt_gt_old"])
    assert unknown.exit_code == 2
    assert "preset 'subiekt_gt_old' does not exist" in unknown.output and "subiekt_nexo" in unknown.output
    typo = CliRunner().invoke(main, ["presets", "show", "subiekt_nexo", "--option", "tga=b2b"])
    assert typo.exit_code == 2 and "'tga' is not an option of preset 'subiekt_nexo'" in typo.output
    typed = CliRunner().invoke(main, ["presets", "show", "subiekt_nexo", "--option", "contacts=yes"])
    assert typed.exit_code == 2 and "'contacts' of preset 'subiekt_nexo' must be true or false" in typed.output
    bare = CliRunner().invoke(main, ["presets", "show", "subiekt_nexo", "--option", "tag"])
    assert bare.exit_code == 2 and "expected KEY=VALUE" in bare.output
