"""A CSV export read with the wrong delimiter (a comma file with `;` configured, or the other way round) is a
configuration error that says what the header seems to use and which key to set, through the `integrator`
command as ops run it: `sync` exits 2 before any run starts, `check` shows it on its source line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from integrator.store.db import open_store
from integrator.store.schema import runs

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INTEGRATOR, *args, "--config", str(config)], capture_output=True, text=True, timeout=120, check=False
    )


def export(tmp_path: Path, delimiter: str) -> Path:
    """A three-customer export separated by `delimiter` (tags quoted: they hold commas)."""
    rows = [["erp_id", "name", "email", "tags"]] + [
        [str(n), f"Firma {n}", f"k{n}@example.pl", '"b2b,hurt"'] for n in (1, 2, 3)
    ]
    path = tmp_path / "kontrahenci.csv"
    path.write_text("\r\n".join(delimiter.join(row) for row in rows) + "\r\n", encoding="utf-8")
    return path


def config_file(tmp_path: Path, csv_path: Path, delimiter: str | None) -> Path:
    config = tmp_path / "config.toml"
    line = "" if delimiter is None else f"delimiter = {json.dumps(delimiter)}\n"
    config.write_text(f'[source]\nkind = "csv"\npath = {json.dumps(str(csv_path))}\n{line}')
    return config


@pytest.mark.parametrize(
    ("used", "configured", "named"),
    [(",", None, "comma"), (";", ",", "semicolon"), ("\t", ";", "tab"), ("|", ",", "pipe")],
    ids=["comma-file-default-semicolon", "semicolon-file-comma-set", "tab-file", "pipe-file"],
)
def test_sync_with_the_wrong_delimiter_exits_2_naming_the_file_the_delimiters_and_the_key(
    tmp_path: Path, used: str, configured: str | None, named: str
) -> None:
    """`sync` exits 2 before a run starts: the message names the CSV file, the configured delimiter, what the
    header looks like it uses and `[source] delimiter`; with the key set as it says, the same file syncs."""
    path = export(tmp_path, used)
    config = config_file(tmp_path, path, configured)
    done = run(config, "sync")
    assert done.returncode == 2, done.stderr
    message = done.stderr
    assert f"the CSV file {path}" in message
    assert f"configured delimiter {json.dumps(configured or ';')}" in message
    assert f"looks {named}-separated (4 columns)" in message
    assert f"set [source] delimiter = {json.dumps(used)}" in message
    assert "does not return the required column" not in message

    as_json = run(config, "sync", "--json")
    assert as_json.returncode == 2, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert (summary["status"], summary["run_id"], summary["created"]) == ("failed", None, 0)
    assert f"set [source] delimiter = {json.dumps(used)}" in summary["message"]
    with open_store(f"sqlite:///{tmp_path / 'integrator.db'}").connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 0

    fixed = config_file(tmp_path, path, used)
    synced = run(fixed, "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["created"] == 3


def test_check_shows_the_delimiter_advice_on_its_source_line(tmp_path: Path) -> None:
    """`integrator check` reports the source as failed with the same advice (and exits 1, as for any failed
    check)."""
    path = export(tmp_path, ",")
    done = run(config_file(tmp_path, path, None), "check", "--json")
    assert done.returncode == 1, done.stderr
    [source] = [c for c in json.loads(done.stdout)["checks"] if c["check"] == "source"]
    assert source["ok"] == "no"
    assert f"the CSV file {path}" in source["detail"] and 'set [source] delimiter = ","' in source["detail"]


def test_a_header_of_one_column_that_no_other_delimiter_splits_still_names_the_missing_columns(
    tmp_path: Path,
) -> None:
    """Only a header another delimiter would split gets the delimiter advice; a one-column export does not."""
    path = tmp_path / "ids.csv"
    path.write_text("erp_id\r\n1\r\n", encoding="utf-8")
    done = run(config_file(tmp_path, path, None), "sync")
    assert done.returncode == 1, done.stderr
    assert "does not return the required column(s) name, email, tags" in done.stderr
    assert "[source] delimiter" not in done.stderr
